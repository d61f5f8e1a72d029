// Issue #18, item 2: a 503 means the work never runs, also when Redis is alive but slower than
// the producer's command timeout. DEBUG SLEEP stalls a private Redis; the enqueues sent into
// the stall answer 503, and when Redis catches up and runs their adds, those jobs are dropped
// at pickup: no mail for any of them (side effects counted by job id, the mail's Message-ID).
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import request from 'supertest';
import { createTestApp, eventually, type TestApp } from '../harness/app.js';
import { startRedis, type PrivateRedis } from '../harness/redis.js';
import { startSmtp, type TestSmtp } from '../harness/smtp.js';

const STALL_S = 5;

describe('reliability: a Redis slower than the command timeout (DEBUG SLEEP)', function () {
  this.timeout(60_000);
  let redis: PrivateRedis;
  let smtp: TestSmtp;
  let t: TestApp;
  let control: Redis;
  let mail: Queue;

  before(async () => {
    redis = await startRedis(['--enable-debug-command', 'local']);
    smtp = await startSmtp();
    t = await createTestApp({ REDIS_URL: redis.url, SMTP_URL: smtp.url });
    await eventually(() =>
      t.offloader.ping().then(
        () => true,
        () => undefined,
      ),
    );
    t.startWorkers();
    control = new Redis(redis.url);
    mail = new Queue('mail', { connection: control, prefix: t.config.QUEUE_PREFIX });
  });
  after(async () => {
    await mail.close();
    await t.close();
    control.disconnect();
    await smtp.close();
    await redis.destroy();
  });

  const signup = (email: string, key?: string) => {
    const req = request(t.app).post('/signup');
    if (key) req.set('Idempotency-Key', key);
    return req.send({ email, name: 'Slow' });
  };
  const completed = (id: string) =>
    eventually(
      async () => ((await t.offloader.status(id))?.state === 'completed' ? true : undefined),
      20_000,
      `job ${id} completed`,
    );

  it('when enqueues time out while Redis sleeps, then they answer 503, and once Redis catches up their jobs never run; a retry with the key, and later requests, run exactly once', async () => {
    // The worker is connected and mail flows.
    const warm = await signup(`warm-${randomUUID()}@example.com`).expect(202);
    await completed((warm.body as { id: string }).id);

    const key = `slow-${randomUUID()}`;
    const keyedEmail = `keyed-${randomUUID()}@example.com`;
    const stalled = Array.from({ length: 6 }, () => `stalled-${randomUUID()}@example.com`);
    const sleeping = control.call('DEBUG', 'SLEEP', String(STALL_S));
    const answers = await Promise.all([
      ...stalled.map((email) => signup(email)),
      signup(keyedEmail, key),
    ]);
    for (const res of answers) assert.equal(res.status, 503, res.text);
    await sleeping;

    // Redis is awake: new requests, and the keyed one's retry, are accepted.
    const fresh = await Promise.all(
      Array.from({ length: 3 }, () => signup(`fresh-${randomUUID()}@example.com`).expect(202)),
    );
    const retried = await signup(keyedEmail, key).expect(202);
    const accepted = [...fresh, retried].map((res) => (res.body as { id: string }).id);
    for (const id of accepted) await completed(id);

    // Every job in the queue has ended: the late adds too (dropped at pickup, as failed).
    const failed = await eventually(async () => {
      const c = await mail.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'failed');
      const open = (c.waiting ?? 0) + (c.active ?? 0) + (c.delayed ?? 0) + (c.prioritized ?? 0);
      return open === 0 ? (c.failed ?? 0) : undefined;
    });
    const refused = await mail.getFailed();
    // The adds sent into the stall did reach Redis (else this test proves nothing); the keyed
    // request's may not have: its first command, binding the key, can time out before it.
    assert.ok(failed >= stalled.length, `${failed} late adds`);
    assert.ok(failed <= stalled.length + 1, `${failed} late adds`);
    // ...and each reads cancelled (refused), with a plain reason, and never ran.
    for (const job of refused) {
      const status = await t.offloader.status(String(job.id));
      assert.equal(status?.state, 'cancelled');
      assert.match(status.error ?? '', /^refused: /);
      assert.equal(status.attempts, 0, `${job.id} never started`);
    }
    const byMessageId = (id: string) =>
      smtp.received.filter((m) => m.mail.messageId === `<${id}@offload.localhost>`).length;
    for (const job of refused) assert.equal(byMessageId(String(job.id)), 0, `mail for ${job.id}`);
    for (const id of accepted) assert.equal(byMessageId(id), 1, `one mail for ${id}`);
    for (const email of stalled) {
      assert.ok(!smtp.received.some((m) => m.to.includes(email)), `no mail to ${email}`);
    }
    assert.equal(smtp.received.filter((m) => m.to.includes(keyedEmail)).length, 1);
  });
});
