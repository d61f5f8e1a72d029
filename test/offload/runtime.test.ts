import assert from 'node:assert/strict';
import { z } from 'zod';
import {
  backoffDelay,
  createInlineOffloader,
  defineJob,
  InvalidEnqueueOptionsError,
  JobCancelledError,
  PermanentError,
  retention,
  RetryLaterError,
} from '../../src/offload/index.js';
import { eventually } from '../harness/app.js';
import { silentLog, startRuntime, type Runtime } from '../harness/runtime.js';

/** What the jobs below did, in order: `<tag>` per run. */
const runs: string[] = [];
const runsOf = (tag: string) => runs.filter((run) => run === tag).length;

const record = defineJob({
  name: 'rt-record',
  queue: 'rt',
  input: z.strictObject({ tag: z.string() }),
  retry: { attempts: 1, backoff: 'fixed', delayMs: 10 },
  run({ tag }) {
    runs.push(tag);
    return Promise.resolve({ tag });
  },
});

/** Fails `failures` times (retryable), then completes. */
const flaky = defineJob({
  name: 'rt-flaky',
  queue: 'rt',
  input: z.strictObject({ tag: z.string(), failures: z.int() }),
  retry: { attempts: 3, backoff: 'fixed', delayMs: 200, jitter: 0 },
  run({ tag, failures }, ctx) {
    runs.push(tag);
    if (ctx.attempt <= failures) throw new Error(`flaky failure ${ctx.attempt}`);
    return Promise.resolve({ attempt: ctx.attempt });
  },
});

const permanent = defineJob({
  name: 'rt-permanent',
  queue: 'rt',
  input: z.strictObject({ tag: z.string() }),
  retry: { attempts: 5, backoff: 'fixed', delayMs: 10 },
  run({ tag }) {
    runs.push(tag);
    throw new PermanentError('the data is wrong: retrying cannot help');
  },
});

/** Turned away once with a retry-later of `delayMs`, then completes. */
const deferred = defineJob({
  name: 'rt-deferred',
  queue: 'rt-limited',
  input: z.strictObject({ tag: z.string(), delayMs: z.int(), scope: z.enum(['job', 'queue']) }),
  retry: { attempts: 1, backoff: 'fixed', delayMs: 10 },
  run({ tag, delayMs, scope }) {
    runs.push(tag);
    if (runsOf(tag) === 1) throw new RetryLaterError(delayMs, 'HTTP 429, Retry-After', scope);
    return Promise.resolve({ at: Date.now() });
  },
});

/** Runs until cancelled or timed out; `obey: false` ignores its signal. */
const long = defineJob({
  name: 'rt-long',
  queue: 'rt-long',
  input: z.strictObject({ tag: z.string(), obey: z.boolean() }),
  retry: { attempts: 1, backoff: 'fixed', delayMs: 10 },
  timeoutMs: 1_500,
  timeoutGraceMs: 300,
  async run({ tag, obey }, ctx) {
    runs.push(`${tag}:start`);
    await new Promise<void>((resolve) => {
      if (obey) ctx.signal.addEventListener('abort', () => resolve(), { once: true });
    });
    runs.push(`${tag}:stopped`);
    ctx.signal.throwIfAborted();
    return 'finished';
  },
});

const jobs = [record, flaky, permanent, deferred, long];

describe('job runtime (queue mode)', () => {
  let rt: Runtime;
  before(async () => {
    rt = await startRuntime(jobs, { retention: retention(1, 3600) });
  });
  after(() => rt.close());

  describe('retries', () => {
    it('when a job fails and then succeeds, then it is retried after its backoff and completes', async () => {
      rt.startWorker({ queues: ['rt'] });
      const started = Date.now();
      const { id } = await rt.offloader.enqueue(flaky, { tag: 'flaky', failures: 2 });
      const status = await rt.until(id);
      assert.equal(status.state, 'completed', status.error);
      assert.deepEqual(status.result, { attempt: 3 });
      assert.equal(status.attempts, 3);
      assert.equal(runsOf('flaky'), 3);
      assert.ok(Date.now() - started >= 2 * 200, 'two fixed 200 ms backoffs passed');
    });

    it('when a job throws a PermanentError, then it fails after one attempt, not five', async () => {
      const { id } = await rt.offloader.enqueue(permanent, { tag: 'permanent' });
      const status = await rt.until(id);
      assert.equal(status.state, 'failed');
      assert.equal(status.attempts, 1);
      assert.match(status.error ?? '', /the data is wrong/);
      assert.equal(runsOf('permanent'), 1);
    });

    it('when the backoff is exponential, then delays double, stop at the cap, and jitter only shortens them', () => {
      const policy = {
        attempts: 10,
        backoff: 'exponential' as const,
        delayMs: 100,
        maxDelayMs: 1_000,
        jitter: 0.5,
      };
      const top = (attempt: number) => backoffDelay(policy, attempt, () => 0);
      assert.deepEqual([1, 2, 3, 4, 5, 6].map(top), [100, 200, 400, 800, 1_000, 1_000]);
      assert.equal(
        backoffDelay(policy, 3, () => 1),
        200,
        'full jitter halves it',
      );
      assert.equal(
        backoffDelay({ ...policy, backoff: 'fixed' }, 7, () => 0),
        100,
      );
    });

    it('when a job asks to retry later, then it runs again after that delay without spending an attempt', async () => {
      rt.startWorker({ queues: ['rt-limited'] });
      const started = Date.now();
      const { id } = await rt.offloader.enqueue(deferred, {
        tag: 'later',
        delayMs: 400,
        scope: 'job',
      });
      const status = await rt.until(id);
      assert.equal(status.state, 'completed', status.error);
      const { at } = status.result as { at: number };
      assert.ok(at - started >= 400, `second run ${at - started} ms after the enqueue`);
      assert.equal(runsOf('later'), 2);
      const job = await rt.bullJob('rt-limited', id);
      // It allows one attempt: had the retry-later spent it, there would be no second run.
      assert.equal(job?.attemptsMade, 1, 'only the completing run counted as an attempt');
    });

    it('when a job asks the whole queue to wait (a 429), then other jobs of that queue wait too', async () => {
      const started = Date.now();
      const first = await rt.offloader.enqueue(deferred, {
        tag: 'pause',
        delayMs: 600,
        scope: 'queue',
      });
      await eventually(() => (runsOf('pause') === 1 ? true : undefined));
      const second = await rt.offloader.enqueue(deferred, {
        tag: 'behind',
        delayMs: 0,
        scope: 'job',
      });
      const [a, b] = await Promise.all([rt.until(first.id), rt.until(second.id)]);
      assert.equal(a.state, 'completed', a.error);
      assert.equal(b.state, 'completed', b.error);
      const firstRunOfBehind = Date.parse(b.startedAt ?? '');
      assert.ok(
        firstRunOfBehind - started >= 550,
        `the other job started ${firstRunOfBehind - started} ms in, after the queue's pause`,
      );
    });
  });

  describe('timing', () => {
    it('when a job has an ETA, then it waits delayed until then', async () => {
      const at = Date.now() + 500;
      const { id, state } = await rt.offloader.enqueue(record, { tag: 'eta' }, { at });
      assert.equal(state, 'delayed');
      const status = await rt.until(id);
      assert.equal(status.state, 'completed');
      assert.ok(Date.parse(status.startedAt ?? '') >= at - 5, 'not started before its ETA');
    });

    it('when a job is not started before its expiry, then it never runs and ends expired', async () => {
      // Nothing consumes rt-idle yet: the job waits past its expiry.
      const idle = defineJob({ ...record, name: 'rt-idle', queue: 'rt-idle' });
      const local = await startRuntime([idle]);
      try {
        const { id } = await local.offloader.enqueue(
          idle,
          { tag: 'expired' },
          { expiresInMs: 200 },
        );
        const status = await local.until(id, (s) => s.state === 'expired', 3_000);
        assert.match(status.error ?? '', /not started by/);
        local.startWorker();
        // The worker drops it for good: failed in BullMQ, expired to a caller, never run.
        await eventually(async () => (await local.bullJob('rt-idle', id))?.finishedOn);
        const dropped = await local.offloader.status(id);
        assert.equal(dropped?.state, 'expired');
        assert.equal(dropped.attempts, 0);
        assert.equal(dropped.startedAt, undefined);
        assert.equal(runsOf('expired'), 0);
      } finally {
        await local.close();
      }
    });

    it('when the options contradict each other, then the enqueue is refused and nothing is added', async () => {
      const now = Date.now();
      for (const options of [
        { delayMs: 10, at: now + 10 },
        { at: now + 1_000, expiresAt: now + 500 },
        { expiresInMs: 0 },
        { expiresAt: new Date('not a date') },
      ]) {
        await assert.rejects(
          rt.offloader.enqueue(record, { tag: 'never' }, options),
          InvalidEnqueueOptionsError,
        );
      }
    });

    it('when jobs have priorities or LIFO, then they are taken in that order', async () => {
      const order = defineJob({ ...record, name: 'rt-order', queue: 'rt-order' });
      const local = await startRuntime([order]);
      try {
        const ids = [];
        for (const [tag, options] of [
          ['order:low', { priority: 10 }],
          ['order:high', { priority: 1 }],
          ['order:plain', {}],
          ['order:lifo', { lifo: true }],
        ] as const) {
          ids.push((await local.offloader.enqueue(order, { tag }, options)).id);
        }
        local.startWorker({ concurrency: { default: 1 } });
        for (const id of ids) await local.until(id);
        const seen = runs.filter((run) => run.startsWith('order:'));
        assert.deepEqual(seen, ['order:lifo', 'order:plain', 'order:high', 'order:low']);
      } finally {
        await local.close();
      }
    });
  });

  describe('time limits and cancel', () => {
    it('when a handler ignores its time limit, then it fails with a timeout after the grace, its late result discarded', async () => {
      rt.startWorker({ queues: ['rt-long'] });
      const started = Date.now();
      const { id } = await rt.offloader.enqueue(long, { tag: 'deaf', obey: false });
      const status = await rt.until(id);
      assert.equal(status.state, 'failed');
      assert.match(status.error ?? '', /timed out after 1500 ms/);
      assert.ok(Date.now() - started >= 1_500 + 300, 'the grace period was given');
      assert.equal(runsOf('deaf:stopped'), 0);
    });

    it('when a handler obeys its time limit, then it stops at once and fails with the timeout', async () => {
      const { id } = await rt.offloader.enqueue(long, { tag: 'obedient', obey: true });
      const status = await rt.until(id);
      assert.equal(status.state, 'failed');
      assert.match(status.error ?? '', /timed out/);
      assert.equal(runsOf('obedient:stopped'), 1);
    });

    it('when an active job is cancelled from another process, then the worker running it aborts it and it ends cancelled', async () => {
      // A second worker process: the cancel must reach whichever one holds the job.
      rt.startWorker({ queues: ['rt-long'] });
      const { id } = await rt.offloader.enqueue(long, { tag: 'cancel-active', obey: true });
      await eventually(() => (runsOf('cancel-active:start') === 1 ? true : undefined));
      const answered = await rt.offloader.cancel(id);
      assert.equal(answered?.status.state, 'cancelled');
      assert.equal(answered.changed, true);
      // The mark alone reads cancelled, with finishedAt, at once; BullMQ's failedReason (the
      // status's `error`) comes only when the worker has stopped the run.
      const status = await rt.until(id, (s) => s.state === 'cancelled' && !!s.error);
      assert.equal(status.error, 'cancelled on request');
      assert.ok(status.finishedAt);
      assert.equal(runsOf('cancel-active:stopped'), 1, 'the handler saw its signal');
      const job = await rt.bullJob('rt-long', id);
      assert.ok(job?.finishedOn, 'BullMQ holds it as finished (failed), not active');
    });

    it('when waiting and delayed jobs are cancelled, then they never run and read cancelled', async () => {
      const idle = defineJob({ ...record, name: 'rt-idle2', queue: 'rt-idle2' });
      const local = await startRuntime([idle]);
      try {
        const waiting = await local.offloader.enqueue(idle, { tag: 'cancel-waiting' });
        const delayed = await local.offloader.enqueue(
          idle,
          { tag: 'cancel-delayed' },
          { delayMs: 60_000 },
        );
        for (const { id } of [waiting, delayed]) {
          assert.equal((await local.offloader.cancel(id))?.status.state, 'cancelled');
        }
        local.startWorker();
        for (const { id } of [waiting, delayed]) {
          // Dropped at pickup (the delayed one at once, not in a minute).
          await eventually(async () => (await local.bullJob('rt-idle2', id))?.finishedOn);
          const status = await local.offloader.status(id);
          assert.equal(status?.state, 'cancelled');
          assert.equal(status.attempts, 0);
        }
        assert.equal(runsOf('cancel-waiting') + runsOf('cancel-delayed'), 0);
      } finally {
        await local.close();
      }
    });

    it('when a finished or unknown job is cancelled, then nothing changes', async () => {
      const { id } = await rt.offloader.enqueue(record, { tag: 'done' });
      await rt.until(id);
      assert.equal((await rt.offloader.cancel(id))?.status.state, 'completed');
      assert.equal(await rt.offloader.cancel('00000000-0000-4000-8000-000000000000'), null);
    });
  });

  describe('queues and retention', () => {
    it('when a queue has a rate limit, then all workers together stay under it', async () => {
      const limited = defineJob({ ...record, name: 'rt-rated', queue: 'rt-rated' });
      const local = await startRuntime([limited]);
      try {
        const rateLimits = { 'rt-rated': { max: 2, durationMs: 500 } };
        local.startWorker({ rateLimits });
        local.startWorker({ rateLimits });
        const started = Date.now();
        const ids = [];
        for (let n = 0; n < 6; n += 1) {
          ids.push((await local.offloader.enqueue(limited, { tag: 'rated' })).id);
        }
        const starts = [];
        for (const id of ids) starts.push(Date.parse((await local.until(id)).startedAt ?? ''));
        // 6 jobs at 2 per 500 ms: the last two start no sooner than 1 s in.
        starts.sort((a, b) => a - b);
        assert.ok(
          (starts[4] ?? 0) - started >= 950,
          `5th start at ${(starts[4] ?? 0) - started} ms`,
        );
      } finally {
        await local.close();
      }
    });

    it('when a queue has its own concurrency, then a worker runs that many of its jobs at once', async () => {
      const gate = {
        open: () => {
          // nothing waits yet
        },
      };
      let running = 0;
      let most = 0;
      const wide = defineJob({
        name: 'rt-wide',
        queue: 'rt-wide',
        input: z.strictObject({}),
        async run() {
          running += 1;
          most = Math.max(most, running);
          await new Promise<void>((resolve) => {
            const previous = gate.open;
            gate.open = () => {
              previous();
              resolve();
            };
          });
          running -= 1;
        },
      });
      const local = await startRuntime([wide]);
      try {
        local.startWorker({ concurrency: { default: 1, queues: { 'rt-wide': 3 } } });
        const ids = [];
        for (let n = 0; n < 5; n += 1) ids.push((await local.offloader.enqueue(wide, {})).id);
        await eventually(() => (running === 3 ? true : undefined));
        gate.open();
        await eventually(() => (running === 2 ? true : undefined));
        gate.open();
        for (const id of ids) await local.until(id);
        assert.equal(most, 3);
      } finally {
        await local.close();
      }
    });

    it('when a result is older than RESULT_TTL, then its id is unknown (404), not pending', async () => {
      const { id } = await rt.offloader.enqueue(record, { tag: 'ttl' });
      await rt.until(id);
      // BullMQ prunes by age when a later job of the queue completes.
      await new Promise((resolve) => setTimeout(resolve, 1_100));
      const later = await rt.offloader.enqueue(record, { tag: 'ttl-later' });
      await rt.until(later.id);
      await eventually(async () => ((await rt.offloader.status(id)) === null ? true : undefined));
    });

    it('when a worker is told to consume a queue no job uses, then it refuses to start', () => {
      assert.throws(() => rt.startWorker({ queues: ['nope'] }), /WORKER_QUEUES names queues/);
      assert.throws(
        () => rt.startWorker({ concurrency: { default: 1, queues: { nope: 2 } } }),
        /QUEUE_CONCURRENCY names queues no job uses: nope/,
      );
    });
  });
});

describe('job runtime (inline mode)', () => {
  const offloader = createInlineOffloader({ deps: {}, log: silentLog });

  it('when a job fails for good, then it fails once, as in queue mode (inline has no retries)', async () => {
    const { id, state } = await offloader.enqueue(permanent, { tag: 'inline-permanent' });
    assert.equal(state, 'failed');
    assert.equal((await offloader.status(id))?.attempts, 1);
  });

  it('when options contradict each other, then inline refuses them too', async () => {
    await assert.rejects(
      offloader.enqueue(record, { tag: 'x' }, { delayMs: 1, at: Date.now() }),
      InvalidEnqueueOptionsError,
    );
  });

  it('when a finished job is cancelled, then it stays as it was', async () => {
    const { id } = await offloader.enqueue(record, { tag: 'inline-done' });
    assert.equal((await offloader.cancel(id))?.status.state, 'completed');
  });

  it('when JobCancelledError is thrown by a handler, then the job reads failed (cancel comes only from outside)', async () => {
    const rogue = defineJob({
      ...record,
      name: 'rt-rogue',
      run: () => Promise.reject(new JobCancelledError()),
    });
    assert.equal((await offloader.enqueue(rogue, { tag: 'r' })).state, 'failed');
  });
});
