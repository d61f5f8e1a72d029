import assert from 'node:assert/strict';
import request from 'supertest';
import { createTestApp, type TestApp } from '../harness/app.js';

const PASSWORD = 'dashboard-password-for-tests';
const QUEUE = 'mail';
const pause = `/admin/queues/api/queues/${QUEUE}/pause`;

describe('the queue dashboard (/admin/queues)', function () {
  this.timeout(30_000);
  let t: TestApp;
  afterEach(() => t.close());
  const paused = () => t.monitor.queues.find((q) => q.name === QUEUE)!.isPaused();

  it('when ADMIN_PASSWORD is unset, then the dashboard is off: 404 even with credentials', async () => {
    t = await createTestApp();
    await request(t.app).get('/admin/queues').expect(404);
    await request(t.app).get('/admin/queues/api/queues').auth('admin', PASSWORD).expect(404);
  });

  it('when the password is missing or wrong, then 401 with a Basic challenge', async () => {
    t = await createTestApp({ ADMIN_PASSWORD: PASSWORD });
    const res = await request(t.app).get('/admin/queues').expect(401);
    assert.match(String(res.headers['www-authenticate']), /^Basic /);
    await request(t.app)
      .get('/admin/queues/api/queues')
      .auth('admin', 'not-the-password')
      .expect(401);
  });

  it('when the password is right, then the dashboard shows every queue', async () => {
    t = await createTestApp({ ADMIN_PASSWORD: PASSWORD });
    const page = await request(t.app).get('/admin/queues').auth('admin', PASSWORD).expect(200);
    assert.match(page.text, /offload queues/);
    const api = await request(t.app)
      .get('/admin/queues/api/queues')
      .auth('admin', PASSWORD)
      .expect(200);
    const names = (api.body as { queues: { name: string; readOnlyMode: boolean }[] }).queues;
    assert.ok(
      names.some((q) => q.name === QUEUE && q.readOnlyMode),
      'mail, read-only',
    );
  });

  it('when writes are not enabled, then a write is refused (405) and nothing changes', async () => {
    t = await createTestApp({ ADMIN_PASSWORD: PASSWORD });
    await request(t.app)
      .put(pause)
      .auth('admin', PASSWORD)
      .set('Sec-Fetch-Site', 'same-origin')
      .expect(405);
    assert.equal(await paused(), false);
  });

  describe('when ADMIN_WRITES=true', () => {
    beforeEach(async () => {
      t = await createTestApp({ ADMIN_PASSWORD: PASSWORD, ADMIN_WRITES: 'true' });
    });

    it('then a write from another site (CSRF) is refused with 403 and nothing changes', async () => {
      await request(t.app)
        .put(pause)
        .auth('admin', PASSWORD)
        .set('Sec-Fetch-Site', 'cross-site')
        .expect(403);
      await request(t.app)
        .put(pause)
        .auth('admin', PASSWORD)
        .set('Origin', 'https://attacker.example')
        .expect(403);
      assert.equal(await paused(), false);
    });

    it("then a write from the dashboard's own page works", async () => {
      await request(t.app)
        .put(pause)
        .auth('admin', PASSWORD)
        .set('Sec-Fetch-Site', 'same-origin')
        .expect(200);
      assert.equal(await paused(), true);
    });
  });
});
