import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Queue, QueueEvents } from 'bullmq';
import { callWebhook, sendEmail } from '../../jobs/index.js';
import {
  IdempotencyConflictError,
  InvalidJobInputError,
  RETENTION,
} from '../../src/offload/index.js';
import { createTestApp, type TestApp } from '../harness/app.js';

describe('offloader: enqueue and run', () => {
  let t: TestApp;

  before(async () => {
    t = await createTestApp();
  });
  after(() => t.close());

  it('when the payload breaks the job schema, then enqueue throws before anything reaches Redis', async () => {
    await assert.rejects(
      // @ts-expect-error -- the wrong shape on purpose
      t.offloader.enqueue(sendEmail, { template: 'welcome', to: 'nope' }),
      (error: unknown) => {
        assert.ok(error instanceof InvalidJobInputError);
        assert.deepEqual(error.problems.map((p) => p.split(':')[0]).sort(), ['name', 'to']);
        return true;
      },
    );
    assert.equal(await t.countJobs(), 0);
  });

  it('when jobs are enqueued, then their ids are random UUIDs and retention is bounded', async () => {
    const input = { template: 'welcome' as const, to: 'a@example.com', name: 'A' };
    const ids = await Promise.all(
      Array.from({ length: 20 }, () => t.offloader.enqueue(sendEmail, input).then((a) => a.id)),
    );
    assert.equal(new Set(ids).size, 20);
    for (const id of ids)
      assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);

    const queue = new Queue('mail', {
      connection: { url: t.config.REDIS_URL },
      prefix: t.config.QUEUE_PREFIX,
    });
    try {
      const job = await queue.getJob(ids[0]!);
      assert.ok(job, 'the job is in Redis');
      assert.deepEqual(job.opts.removeOnComplete, RETENTION.completed);
      assert.deepEqual(job.opts.removeOnFail, RETENTION.failed);
      assert.equal(job.opts.attempts, sendEmail.retry.attempts);
      await queue.obliterate({ force: true });
    } finally {
      await queue.close();
    }
  });

  it('when a job in Redis has a payload the worker cannot accept, then it fails at once without retries', async () => {
    // An old or hand-made job, added around the offloader's validation.
    const connection = { url: t.config.REDIS_URL };
    const queue = new Queue('mail', { connection, prefix: t.config.QUEUE_PREFIX });
    const events = new QueueEvents('mail', { connection, prefix: t.config.QUEUE_PREFIX });
    try {
      await events.waitUntilReady();
      const job = await queue.add(
        'send-email',
        { input: { template: 'welcome', to: 'x@example.com\r\nBcc: y@example.com', name: 'X' } },
        { jobId: 'bad-payload', attempts: 5 },
      );
      t.startWorkers();
      await assert.rejects(
        job.waitUntilFinished(events, 10_000),
        /invalid input for job send-email: to:/,
      );
      const failed = await queue.getJob('bad-payload');
      assert.equal(failed?.attemptsMade, 1, 'no retry for a payload that can never pass');
    } finally {
      await events.close();
      await queue.close();
    }
  });
});

// `enqueue(job, input, { key })` in code follows the HTTP rule: a key is bound to its first
// input; the same input again is a replay, another one a typed conflict that adds nothing.
for (const mode of ['queue', 'inline'] as const) {
  describe(`offloader: idempotency keys in code (${mode} mode)`, () => {
    let t: TestApp;
    before(async () => {
      t = await createTestApp({ OFFLOAD_MODE: mode, SMTP_URL: 'smtp://127.0.0.1:9' });
    });
    after(() => t.close());

    it('when a key comes back with another input, then enqueue throws IdempotencyConflictError and adds nothing; the first input again replays its job', async () => {
      const key = `code-${randomUUID()}`;
      const input = { template: 'welcome' as const, to: 'k@example.com', name: 'K' };
      const first = await t.offloader.enqueue(sendEmail, input, { key });
      const before = mode === 'queue' ? await t.countJobs() : 0;
      await assert.rejects(
        t.offloader.enqueue(sendEmail, { ...input, name: 'Other' }, { key }),
        IdempotencyConflictError,
      );
      if (mode === 'queue') assert.equal(await t.countJobs(), before);
      const again = await t.offloader.enqueue(sendEmail, input, { key });
      assert.equal(again.id, first.id);
      assert.equal(again.replayed, true);
      // Keys are scoped per job: the same key for another job is another binding.
      const hook = await t.offloader.enqueue(
        callWebhook,
        { url: 'https://example.com/h', event: 'k.test', payload: {} },
        { key },
      );
      assert.notEqual(hook.id, first.id);
    });
  });
}
