import assert from 'node:assert/strict';
import request from 'supertest';
import { createTestApp, type TestApp } from '../harness/app.js';

describe('GET / (the demo page)', () => {
  let t: TestApp;
  before(async () => {
    t = await createTestApp();
  });
  after(() => t.close());

  it('when the page is asked for, then it is served with a CSP that allows only its own files', async () => {
    const res = await request(t.app).get('/').expect(200);
    assert.match(String(res.headers['content-type']), /^text\/html/);
    assert.match(res.text, /Welcome email/);
    assert.match(res.text, /<script type="module" src="\/app.js">/);
    const csp = String(res.headers['content-security-policy']);
    assert.match(csp, /default-src 'self'/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
  });

  it('when its script and style are asked for, then they are served with their types', async () => {
    const script = await request(t.app).get('/app.js').expect(200);
    assert.match(String(script.headers['content-type']), /javascript/);
    const style = await request(t.app).get('/style.css').expect(200);
    assert.match(String(style.headers['content-type']), /^text\/css/);
  });
});

const DELAY_MS = 1_500;

describe('OUTBOX_DELAY_MS (the pretend mail provider of npm run dev)', () => {
  let t: TestApp;
  before(async () => {
    // Long enough that an enqueue on a loaded machine still answers well inside it.
    t = await createTestApp({ OUTBOX_DELAY_MS: String(DELAY_MS) });
  });
  after(() => t.close());

  const timed = async (query: string, status: number) => {
    const started = performance.now();
    await request(t.app)
      .post(`/signup${query}`)
      .send({ email: 'slow@example.com', name: 'Slow' })
      .expect(status);
    return performance.now() - started;
  };

  it('when set, then an inline signup waits for it and an offloaded one does not', async () => {
    const inline = await timed('?mode=sync', 201);
    const offloaded = await timed('', 202);
    assert.ok(inline >= DELAY_MS, `inline took ${inline} ms`);
    assert.ok(offloaded < DELAY_MS, `offloaded took ${offloaded} ms`);
  });
});
