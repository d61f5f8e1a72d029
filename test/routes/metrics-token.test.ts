import assert from 'node:assert/strict';
import request from 'supertest';
import { createTestApp, type TestApp } from '../harness/app.js';

const TOKEN = 'metrics-token-for-tests-0123456789';

describe('GET /metrics with METRICS_TOKEN', function () {
  this.timeout(30_000);
  let t: TestApp;
  afterEach(() => t.close());

  it('when METRICS_TOKEN is set, then a scrape without it, or with another, is a 401', async () => {
    t = await createTestApp({ METRICS_TOKEN: TOKEN });
    const bare = await request(t.app).get('/metrics').expect(401);
    assert.match(String(bare.headers['www-authenticate']), /^Bearer /);
    await request(t.app).get('/metrics').set('Authorization', `Bearer ${TOKEN}x`).expect(401);
    await request(t.app)
      .get('/metrics')
      .set('Authorization', `Bearer ${TOKEN.slice(1)}`)
      .expect(401);
    await request(t.app).get('/metrics').set('Authorization', `Basic ${TOKEN}`).expect(401);
    assert.doesNotMatch(bare.text, /# TYPE/);
  });

  it('when METRICS_TOKEN is set and sent as a bearer token, then the metrics come', async () => {
    t = await createTestApp({ METRICS_TOKEN: TOKEN });
    const res = await request(t.app)
      .get('/metrics')
      .set('Authorization', `Bearer ${TOKEN}`)
      .expect(200);
    assert.match(res.text, /^# TYPE http_request_duration_seconds /m);
  });

  it('when METRICS_TOKEN is unset, then /metrics is open', async () => {
    t = await createTestApp();
    await request(t.app).get('/metrics').expect(200);
  });
});
