import assert from 'node:assert/strict';
import request from 'supertest';
import { createTestApp, type TestApp } from '../harness/app.js';
import { freePort } from '../harness/ports.js';

describe('when Redis is down', () => {
  let t: TestApp;

  before(async () => {
    // Nothing listens on this port: the producer never connects.
    t = await createTestApp({ REDIS_URL: `redis://127.0.0.1:${await freePort()}` });
  });
  after(() => t.close());

  it('then POST /signup answers 503 at once, with Retry-After, instead of hanging', async () => {
    const started = performance.now();
    const res = await request(t.app)
      .post('/signup')
      .send({ email: 'a@example.com', name: 'Ann' })
      .expect(503);
    // Hanging would last until the test's timeout (30 s): 5 s tells the two apart on a machine
    // under any load (how fast the 503 is belongs in bench/, not here).
    assert.ok(performance.now() - started < 5_000, 'answered within 5 s, not hanging');
    assert.equal(res.headers['retry-after'], '5');
    assert.match((res.body as { error: string }).error, /queue is unavailable/);
  });

  it('then GET /jobs/:id answers 503, not a misleading 404', async () => {
    await request(t.app).get('/jobs/00000000-0000-4000-8000-000000000000').expect(503);
  });

  it('then /readyz answers 503 saying in plain words that Redis refuses connections, while /healthz stays 200', async () => {
    const res = await request(t.app).get('/readyz').expect(503);
    assert.equal((res.body as { ok: boolean }).ok, false);
    // A sentence an operator can act on, naming the server: not ioredis's "Stream isn't
    // writeable and enableOfflineQueue options is false".
    assert.deepEqual((res.body as { problems: string[] }).problems, [
      `Redis at ${new URL(t.config.REDIS_URL).host} refuses connections: is it running, and is REDIS_URL right?`,
    ]);
    await request(t.app).get('/healthz').expect(200);
  });
});
