import assert from 'node:assert/strict';
import request, { type Response } from 'supertest';
import { createTestApp, type TestApp } from '../harness/app.js';

const PASSWORD = 'dashboard-password-for-tests';

/** frame-ancestors of a CSP header, or undefined. */
const frameAncestors = (res: Response) =>
  /(?:^|;)\s*frame-ancestors ([^;]+)/.exec(String(res.headers['content-security-policy']))?.[1];

describe('security headers (src/http/security.ts)', function () {
  this.timeout(30_000);
  let t: TestApp;
  before(async () => {
    t = await createTestApp({ ADMIN_PASSWORD: PASSWORD });
  });
  after(() => t.close());

  it('when any route answers (page, JSON, 404, 400, 401), then it sends nosniff and no X-Powered-By', async () => {
    const urls = ['/', '/app.js', '/healthz', '/no/such/page', 'POST /signup', '/admin/queues'];
    const answers = await Promise.all([
      request(t.app).get('/'),
      request(t.app).get('/app.js'),
      request(t.app).get('/healthz'),
      request(t.app).get('/no/such/page'),
      request(t.app).post('/signup').send({ email: 'not an address' }),
      request(t.app).get('/admin/queues'),
      request(t.app).get('/dev/outbox'),
    ]);
    urls.push('/dev/outbox');
    assert.deepEqual(
      answers.map((res) => res.status),
      [200, 200, 200, 404, 400, 401, 200],
    );
    for (const [i, res] of answers.entries()) {
      const url = urls[i];
      assert.equal(res.headers['x-content-type-options'], 'nosniff', url);
      assert.equal(res.headers['x-powered-by'], undefined, url);
      assert.ok(res.headers['content-security-policy'], `${url}: a CSP`);
    }
  });

  it('when an HTML page is served (demo, outbox), then its CSP allows no inline script and no framing', async () => {
    for (const path of ['/', '/dev/outbox']) {
      const res = await request(t.app).get(path).expect(200);
      assert.match(String(res.headers['content-type']), /text\/html/);
      const csp = String(res.headers['content-security-policy']);
      // The outbox's own pages allow less still: 'none' (routes/outbox.ts).
      assert.match(csp, /default-src '(self|none)'/, path);
      assert.doesNotMatch(csp, /script-src[^;]*unsafe-inline/, path);
      assert.equal(frameAncestors(res), "'none'", path);
    }
  });

  it('when the admin area answers, logged in or not, then it cannot be framed', async () => {
    const answers = await Promise.all([
      request(t.app).get('/admin/queues'),
      request(t.app).get('/admin/queues').auth('admin', PASSWORD),
      request(t.app).get('/admin/queues/api/queues').auth('admin', PASSWORD),
      request(t.app).get('/admin/jobs/failed').auth('admin', PASSWORD),
    ]);
    assert.deepEqual(
      answers.map((res) => res.status),
      [401, 200, 200, 200],
    );
    const urls = ['401', 'page', 'api', 'dead letters'];
    for (const [i, res] of answers.entries()) {
      const url = urls[i];
      assert.equal(res.headers['x-frame-options'], 'DENY', url);
      assert.equal(frameAncestors(res), "'none'", url);
      assert.equal(res.headers['x-powered-by'], undefined, url);
    }
  });

  it('when the dashboard page is served, then its CSP lets its own scripts run and no inline script', async () => {
    const res = await request(t.app).get('/admin/queues').auth('admin', PASSWORD).expect(200);
    const csp = String(res.headers['content-security-policy']);
    assert.match(csp, /script-src 'self'(;|$)/);
    assert.match(csp, /style-src [^;]*https:\/\/fonts\.googleapis\.com/);
    // Every script the page loads is a file of this origin, under the dashboard's path.
    for (const [, src] of res.text.matchAll(/<script[^>]* src="([^"]+)"/g)) {
      assert.doesNotMatch(String(src), /^(https?:)?\/\//, 'same origin');
    }
  });
});
