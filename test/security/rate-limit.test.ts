import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import request, { type Response } from 'supertest';
import { createTestApp, type TestApp } from '../harness/app.js';
import { makeImage } from '../harness/images.js';
import { freePort } from '../harness/ports.js';

const PASSWORD = 'dashboard-password-for-tests';
const signup = (t: TestApp, n: number) =>
  request(t.app)
    .post('/signup')
    .send({ email: `user${n}@example.com`, name: `User ${n}` });

function assertRefused(res: Response): void {
  assert.equal(res.status, 429);
  const retryAfter = Number(res.headers['retry-after']);
  assert.ok(Number.isInteger(retryAfter) && retryAfter > 0 && retryAfter <= 60, 'Retry-After');
  assert.match((res.body as { error: string }).error, /too many requests: at most \d+/);
}

describe('rate limits (src/http/rate-limit.ts)', function () {
  this.timeout(30_000);
  const apps: TestApp[] = [];
  /** Two web processes' apps on one Redis, under one queue prefix: as two dynos are. */
  async function twoApps(env: Record<string, string>): Promise<[TestApp, TestApp]> {
    const shared = { QUEUE_PREFIX: `rl${randomUUID().slice(0, 8)}`, ...env };
    const pair = await Promise.all([createTestApp(shared), createTestApp(shared)]);
    apps.push(...pair);
    return pair;
  }
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((t) => t.close()));
  });

  it('when a client signs up past the limit across two web processes, then the one count refuses it with 429 and Retry-After, and nothing more is enqueued', async () => {
    const [a, b] = await twoApps({ RATE_LIMIT_SIGNUP: '3/min' });
    const answers = [];
    for (let n = 0; n < 5; n++) answers.push(await signup(n % 2 ? b : a, n));
    assert.deepEqual(
      answers.map((res) => res.status),
      [202, 202, 202, 429, 429],
    );
    assertRefused(answers[3]!);
    assertRefused(answers[4]!);
    assert.equal(await a.countJobs('mail'), 3);
  });

  it('when many signups arrive at once on two processes, then exactly the limit is accepted', async () => {
    const [a, b] = await twoApps({ RATE_LIMIT_SIGNUP: '7/min' });
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, n) => signup(n % 2 ? b : a, n)),
    );
    const accepted = answers.filter((res) => res.status === 202).length;
    assert.equal(accepted, 7);
    assert.equal(answers.filter((res) => res.status === 429).length, 13);
    assert.equal(await a.countJobs('mail'), 7);
  });

  it('when an upload is refused for rate, then it is neither stored nor enqueued', async () => {
    const [a, b] = await twoApps({ RATE_LIMIT_THUMBNAILS: '1/min' });
    const photo = await makeImage('jpeg', 400, 300);
    const upload = (t: TestApp) =>
      request(t.app).post('/thumbnails').attach('image', photo, 'a.jpg');
    assert.equal((await upload(a)).status, 202);
    assertRefused(await upload(b));
    assertRefused(await upload(a));
    for (const t of [a, b]) {
      const stored = await readdir(join(t.config.STORAGE_DIR, 'uploads')).catch(() => []);
      assert.equal(stored.length, t === a ? 1 : 0, 'only the accepted upload is stored');
    }
    assert.equal(await a.countJobs('media'), 1);
  });

  it('when reports and webhooks pass their limits, then they are refused too', async () => {
    const [a, b] = await twoApps({ RATE_LIMIT_REPORTS: '1/min', RATE_LIMIT_WEBHOOKS: '1/min' });
    // The limiter comes before the body is read: even a bad body counts, and is refused.
    await request(a.app).post('/reports').send({}).expect(400);
    assertRefused(await request(b.app).post('/reports').send({}));
    await request(a.app).post('/webhooks').send({}).expect(400);
    assertRefused(await request(b.app).post('/webhooks').send({}));
  });

  it('when admin logins fail past the limit, then even the right password is refused until the window ends, and logins that succeed never count', async () => {
    const [a, b] = await twoApps({ ADMIN_PASSWORD: PASSWORD, RATE_LIMIT_ADMIN_FAILURES: '2/min' });
    for (let n = 0; n < 4; n++) {
      await request(n % 2 ? b.app : a.app)
        .get('/admin/queues/api/queues')
        .auth('admin', PASSWORD)
        .expect(200);
    }
    await request(a.app).get('/admin/queues').auth('admin', 'guess-number-one').expect(401);
    await request(b.app).get('/admin/queues').auth('admin', 'guess-number-two').expect(401);
    assertRefused(await request(a.app).get('/admin/queues').auth('admin', 'guess-number-three'));
    assertRefused(await request(b.app).get('/admin/queues').auth('admin', PASSWORD));
  });

  it('when a limit is off, then no request is refused', async () => {
    const [a] = await twoApps({ RATE_LIMIT_SIGNUP: 'off' });
    for (let n = 0; n < 25; n++) await signup(a, n).expect(202);
  });
});

describe('rate limits when Redis is down', function () {
  let t: TestApp;
  before(async () => {
    t = await createTestApp({
      REDIS_URL: `redis://127.0.0.1:${await freePort()}`,
      RATE_LIMIT_SIGNUP: '1/min',
      ADMIN_PASSWORD: PASSWORD,
      RATE_LIMIT_ADMIN_FAILURES: '1/min',
    });
  });
  after(() => t.close());

  it('then the limiters let requests through: a signup gets the queue’s 503, never a 500 or a 429', async () => {
    for (let n = 0; n < 3; n++) {
      const res = await signup(t, n).expect(503);
      assert.match((res.body as { error: string }).error, /queue is unavailable/);
    }
  });

  it('then a wrong admin password is still a 401', async () => {
    for (let n = 0; n < 3; n++) {
      await request(t.app).get('/admin/queues').auth('admin', 'a-wrong-guess').expect(401);
    }
  });
});
