// Production mode (NODE_ENV=production): every development surface is off by default, each
// back on with its own key (README, Deploy, "Production mode").
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import request from 'supertest';
import { createTestApp, type TestApp } from '../harness/app.js';

const PASSWORD = 'production-admin-password';
const basic = `Basic ${Buffer.from(`admin:${PASSWORD}`).toString('base64')}`;
/** Production, with mail going to the outbox (MAIL_OUTBOX=true) so the outbox page could exist. */
const production = { NODE_ENV: 'production', MAIL_OUTBOX: 'true' };

describe('production mode (NODE_ENV=production)', () => {
  describe('when no switch is set', () => {
    let t: TestApp;
    before(async () => {
      t = await createTestApp(production);
    });
    after(() => t.close());

    it('then the demo page and its files are 404', async () => {
      for (const path of ['/', '/index.html', '/app.js', '/style.css']) {
        await request(t.app).get(path).expect(404);
      }
    });

    it('then POST /signup?mode=sync is 403 naming SYNC_MODE, sends nothing and enqueues nothing', async () => {
      const res = await request(t.app)
        .post('/signup?mode=sync')
        .send({ email: 'sync@example.com', name: 'Sync' })
        .expect(403);
      assert.match((res.body as { error: string }).error, /SYNC_MODE/);
      assert.equal(await t.countJobs('mail'), 0);
      assert.deepEqual(await readdir(t.config.OUTBOX_DIR).catch(() => []), [], 'no letter written');
    });

    it('then POST /reports with a sample roster is 403 naming REPORT_SAMPLES, and enqueues nothing', async () => {
      const res = await request(t.app)
        .post('/reports')
        .send({ email: 'sample@example.com', sample: 3 })
        .expect(403);
      assert.match((res.body as { error: string }).error, /REPORT_SAMPLES/);
      assert.equal(await t.countJobs('reports'), 0);
    });

    it('then the outbox page is 404, even though mail goes to the outbox', async () => {
      assert.equal(t.deps.mailer.via, 'outbox');
      await request(t.app).get('/dev/outbox').expect(404);
      await request(t.app).get('/dev/outbox/x.eml').expect(404);
    });

    it('then the work itself is still taken: a signup and a real roster answer 202', async () => {
      await request(t.app)
        .post('/signup')
        .send({ email: 'prod@example.com', name: 'Prod' })
        .expect(202);
      await request(t.app)
        .post('/reports')
        .send({ email: 'prod@example.com', students: [{ id: 'S1', name: 'Ann Lee' }] })
        .expect(202);
    });
  });

  describe('when every switch is set', () => {
    let t: TestApp;
    before(async () => {
      t = await createTestApp({
        ...production,
        DEMO_PAGE: 'true',
        SYNC_MODE: 'true',
        REPORT_SAMPLES: 'true',
        OUTBOX_PAGE: 'admin',
        ADMIN_PASSWORD: PASSWORD,
      });
    });
    after(() => t.close());

    it('then the demo page is served', async () => {
      const res = await request(t.app).get('/').expect(200);
      assert.match(res.text, /Welcome email/);
    });

    it('then ?mode=sync sends inside the request (201) and the letter is in the outbox, behind the admin password', async () => {
      await request(t.app)
        .post('/signup?mode=sync')
        .send({ email: 'switched@example.com', name: 'Switched' })
        .expect(201);
      await request(t.app).get('/dev/outbox').expect(401);
      await request(t.app)
        .get('/dev/outbox')
        .set('Authorization', 'Basic eDp3cm9uZw==')
        .expect(401);
      const page = await request(t.app).get('/dev/outbox').set('Authorization', basic).expect(200);
      const name = /href="\/dev\/outbox\/([\w-]+)"/.exec(page.text)?.[1];
      assert.ok(name, 'one letter listed');
      await request(t.app).get(`/dev/outbox/${name}`).expect(401);
      const letter = await request(t.app)
        .get(`/dev/outbox/${name}`)
        .set('Authorization', basic)
        .expect(200);
      assert.match(letter.text, /switched@example\.com/);
    });

    it('then a sample roster is accepted (202)', async () => {
      await request(t.app)
        .post('/reports')
        .send({ email: 'sample@example.com', sample: 3 })
        .expect(202);
    });
  });

  describe('when NODE_ENV is unset (development)', () => {
    let t: TestApp;
    before(async () => {
      t = await createTestApp();
    });
    after(() => t.close());

    it('then the outbox page is open without a password', async () => {
      await request(t.app).get('/dev/outbox').expect(200);
    });
  });
});
