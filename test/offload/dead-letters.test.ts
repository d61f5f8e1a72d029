import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { z } from 'zod';
import {
  listDeadLetters,
  ReplayRefusedError,
  replayDeadLetter,
  UnknownQueueError,
  type DeadLetterSource,
} from '../../src/offload/dead-letters.js';
import {
  child,
  createRegistry,
  defineJob,
  InvalidJobInputError,
  PermanentError,
  type JobData,
} from '../../src/offload/index.js';
import { createProducerConnection } from '../../src/redis/connections.js';
import { eventually } from '../harness/app.js';
import { sharedRedisUrl } from '../harness/global.js';
import { silentLog, startRuntime, type Runtime } from '../harness/runtime.js';
import { Watched } from '../harness/watched.js';

/** How many more runs of a tag fail (unset: every one); and each run's attempt number. */
const failuresLeft = new Map<string, number>();
const attemptsSeen = new Map<string, number[]>();

const boom = defineJob({
  name: 'dl-boom',
  queue: 'dl-a',
  input: z.strictObject({ tag: z.string() }),
  retry: { attempts: 3, backoff: 'fixed', delayMs: 0, jitter: 0 },
  run({ tag }, ctx) {
    attemptsSeen.set(tag, [...(attemptsSeen.get(tag) ?? []), ctx.attempt]);
    const left = failuresLeft.get(tag) ?? Infinity;
    if (left > 0) {
      failuresLeft.set(tag, left - 1);
      throw new Error(`${tag} attempt ${ctx.attempt}\nsecond line of the message`);
    }
    return Promise.resolve({ attempt: ctx.attempt });
  },
});

const double = defineJob({
  name: 'dl-double',
  queue: 'dl-b',
  input: z.strictObject({ n: z.int() }),
  retry: { attempts: 1, backoff: 'fixed', delayMs: 0 },
  run({ n }) {
    if (n < 0) throw new PermanentError(`cannot double ${n}`);
    return Promise.resolve({ doubled: n * 2 });
  },
});

/** Nothing consumes dl-idle until a test starts a worker for it. */
const idle = defineJob({ ...double, name: 'dl-idle', queue: 'dl-idle' });

const step = defineJob({
  name: 'dl-step',
  queue: 'dl-b',
  input: z.strictObject({ v: z.int(), fail: z.boolean() }),
  retry: { attempts: 1, backoff: 'fixed', delayMs: 0 },
  run({ v, fail }) {
    if (fail) throw new PermanentError(`step ${v} was told to fail`);
    return Promise.resolve({ v });
  },
});

const gather = defineJob({
  name: 'dl-gather',
  queue: 'dl-a',
  input: z.strictObject({}),
  retry: { attempts: 1, backoff: 'fixed', delayMs: 0 },
  async run(_input, ctx) {
    return { steps: await ctx.results() };
  },
});

const jobs = [boom, double, idle, step, gather];
const registry = createRegistry(jobs);

describe('dead letters', () => {
  let rt: Runtime;
  let connection: Redis;
  let source: DeadLetterSource;

  beforeEach(async () => {
    rt = await startRuntime(jobs);
    connection = createProducerConnection(sharedRedisUrl(), silentLog);
    await new Promise((resolve) => connection.once('ready', resolve));
    const queues = registry.queues.map(
      (name) => new Queue(name, { connection, prefix: rt.prefix }),
    );
    source = { registry, queues };
  });
  afterEach(async () => {
    await Promise.all(source.queues.map((queue) => queue.close()));
    await rt.close();
    await connection.quit();
  });

  const failed = async (id: string) => {
    const status = await rt.until(id);
    assert.equal(status.state, 'failed', `job ${id} failed`);
    return status;
  };

  describe('listing', () => {
    it('when jobs fail for good, then they are listed newest first across queues with each attempt’s error; cancelled and expired jobs are not', async () => {
      rt.startWorker({ queues: ['dl-a', 'dl-b'] });
      const first = await rt.offloader.enqueue(boom, { tag: 'first' });
      await failed(first.id);
      const second = await rt.offloader.enqueue(double, { n: -1 });
      await failed(second.id);
      const third = await rt.offloader.enqueue(boom, { tag: 'third' });
      await failed(third.id);
      // Failed in BullMQ too, but cancelled and expired: not dead letters.
      const cancelled = await rt.offloader.enqueue(idle, { n: 1 });
      await rt.offloader.cancel(cancelled.id);
      const expired = await rt.offloader.enqueue(idle, { n: 2 }, { expiresInMs: 50 });
      await rt.until(expired.id, (s) => s.state === 'expired');
      rt.startWorker({ queues: ['dl-idle'] });
      for (const { id } of [cancelled, expired]) {
        await eventually(async () => (await rt.bullJob('dl-idle', id))?.finishedOn);
      }

      const page = await listDeadLetters(source);
      assert.deepEqual(
        page.jobs.map((job) => job.id),
        [third.id, second.id, first.id],
      );
      assert.equal(page.more, false);
      const oldest = page.jobs[2];
      assert.deepEqual(
        { ...oldest, failedAt: undefined },
        {
          id: first.id,
          name: 'dl-boom',
          queue: 'dl-a',
          error: 'first attempt 3\nsecond line of the message',
          attempts: 3,
          failedAt: undefined,
          history: ['Error: first attempt 1', 'Error: first attempt 2', 'Error: first attempt 3'],
        },
      );
      assert.ok(Date.parse(oldest?.failedAt ?? '') <= Date.parse(page.jobs[1]?.failedAt ?? ''));
      assert.deepEqual(page.jobs[1]?.history, ['UnrecoverableError: cannot double -1']);

      const onlyB = await listDeadLetters(source, { queue: 'dl-b' });
      assert.deepEqual(
        onlyB.jobs.map((job) => job.id),
        [second.id],
      );
      const middle = await listDeadLetters(source, { limit: 1, offset: 1 });
      assert.deepEqual(
        middle.jobs.map((job) => job.id),
        [second.id],
      );
      assert.equal(middle.more, true);
      const last = await listDeadLetters(source, { limit: 1, offset: 2 });
      assert.deepEqual(
        last.jobs.map((job) => job.id),
        [first.id],
      );
      assert.equal(last.more, false);
      await assert.rejects(listDeadLetters(source, { queue: 'nope' }), UnknownQueueError);
    });
  });

  describe('replay', () => {
    it('when a failed job is replayed, then the same id runs again with all its attempts', async () => {
      rt.startWorker();
      const { id } = await rt.offloader.enqueue(boom, { tag: 'again' });
      await failed(id);
      failuresLeft.set('again', 2); // the replay fails twice more, then completes

      const replayed = await replayDeadLetter(source, id);
      assert.equal(replayed?.id, id);
      assert.notEqual(replayed.state, 'failed');
      const status = await rt.until(id);
      assert.equal(status.state, 'completed', status.error);
      assert.deepEqual(status.result, { attempt: 3 });
      assert.equal(status.attempts, 3);
      assert.deepEqual(attemptsSeen.get('again'), [1, 2, 3, 1, 2, 3]);
      // The history goes on: three failures, then two more.
      assert.equal((await rt.bullJob('dl-a', id))?.stacktrace?.length, 5);
      assert.deepEqual((await listDeadLetters(source)).jobs, []);
    });

    it('when a failed job is replayed with corrected input, then the input is checked against its schema and the job runs with it', async () => {
      rt.startWorker();
      const { id } = await rt.offloader.enqueue(double, { n: -3 });
      await failed(id);

      await assert.rejects(replayDeadLetter(source, id, { n: 'four' }), (error: unknown) => {
        assert.ok(error instanceof InvalidJobInputError);
        assert.match(error.problems.join(), /^n: /);
        return true;
      });
      assert.equal(
        (await rt.offloader.status(id))?.state,
        'failed',
        'refused input changes nothing',
      );

      await replayDeadLetter(source, id, { n: 4 });
      const status = await rt.until(id);
      assert.equal(status.state, 'completed', status.error);
      assert.deepEqual(status.result, { doubled: 8 });
      assert.deepEqual(((await rt.bullJob('dl-b', id))?.data as JobData | undefined)?.input, {
        n: 4,
      });
    });

    it('when a failed job’s expiry has passed, then its replay still runs (the expiry was for its first start)', async () => {
      rt.startWorker();
      const { id } = await rt.offloader.enqueue(double, { n: -1 }, { expiresInMs: 200 });
      await failed(id);
      const expiresAt =
        ((await rt.bullJob('dl-b', id))?.data as JobData | undefined)?.expiresAt ?? 0;
      await eventually(() => (Date.now() > expiresAt ? true : undefined));

      await replayDeadLetter(source, id, { n: 1 });
      const status = await rt.until(id);
      assert.equal(status.state, 'completed', status.error);
      assert.equal(
        ((await rt.bullJob('dl-b', id))?.data as JobData | undefined)?.expiresAt,
        undefined,
      );
    });

    it('when the job is not failed, then the replay is refused; an unknown id answers null', async () => {
      rt.startWorker();
      const done = await rt.offloader.enqueue(double, { n: 1 });
      assert.equal((await rt.until(done.id)).state, 'completed');
      await assert.rejects(replayDeadLetter(source, done.id), {
        name: 'ReplayRefusedError',
        message: /is completed: only failed jobs/,
      });

      const cancelled = await rt.offloader.enqueue(double, { n: 1 }, { delayMs: 60_000 });
      await rt.offloader.cancel(cancelled.id);
      await eventually(async () => (await rt.bullJob('dl-b', cancelled.id))?.finishedOn);
      assert.equal(await (await rt.bullJob('dl-b', cancelled.id))?.getState(), 'failed');
      await assert.rejects(replayDeadLetter(source, cancelled.id), /is cancelled/);

      assert.equal(await replayDeadLetter(source, '00000000-0000-4000-8000-000000000000'), null);
    });

    it('when a workflow failed because a step failed, then its replay names the step; once that step is replayed and completed, the workflow runs with every result', async () => {
      rt.startWorker();
      const { id } = await rt.offloader.enqueue(
        gather,
        {},
        { children: [child(step, { v: 1, fail: false }), child(step, { v: 2, fail: true })] },
      );
      await failed(id);
      const [good, bad] = [`${id}.0`, `${id}.1`];
      await eventually(async () => (await rt.offloader.status(good))?.finishedAt);

      await assert.rejects(replayDeadLetter(source, id), (error: unknown) => {
        assert.ok(error instanceof ReplayRefusedError);
        assert.match(
          error.message,
          new RegExp(`step ${bad.replace('.', '\\.')} failed: replay that step first`),
        );
        return true;
      });
      await replayDeadLetter(source, bad, { v: 2, fail: false });
      assert.equal((await rt.until(bad)).state, 'completed');
      // BullMQ does not revive the parent by itself: it stays failed until it is replayed.
      assert.equal(await (await rt.bullJob('dl-a', id))?.getState(), 'failed');

      await replayDeadLetter(source, id);
      const status = await rt.until(id);
      assert.equal(status.state, 'completed', status.error);
      assert.deepEqual(status.result, { steps: [{ v: 1 }, { v: 2 }] });
    });
  });

  describe('the dead-letter log line', () => {
    it('when a job exhausts three attempts, then the line is logged once, not once per attempt; a job that recovers or is cancelled gets none', async () => {
      const lines = new Watched<{
        msg: string;
        jobId?: string;
        attempts?: number;
        level: number;
      }>();
      const stream = new Writable({
        write(chunk: Buffer, _encoding, done) {
          for (const line of chunk.toString().split('\n').filter(Boolean)) {
            lines.push(JSON.parse(line) as { msg: string; level: number });
          }
          done();
        },
      });
      rt.startWorker({ log: pino({ level: 'info' }, stream) });
      const DEAD = 'job failed for good: dead-lettered';
      const linesOf = (id: string, msg: string) =>
        lines.items.filter((line) => line.jobId === id && line.msg === msg);

      failuresLeft.set('recovers', 2);
      const recovers = await rt.offloader.enqueue(boom, { tag: 'recovers' });
      assert.equal((await rt.until(recovers.id)).state, 'completed');
      const cancelled = await rt.offloader.enqueue(double, { n: 1 }, { delayMs: 60_000 });
      await rt.offloader.cancel(cancelled.id);
      await eventually(async () => (await rt.bullJob('dl-b', cancelled.id))?.finishedOn);
      const { id } = await rt.offloader.enqueue(boom, { tag: 'exhausted' });

      const dead = await lines.waitFor((line) => line.jobId === id && line.msg === DEAD, {
        timeoutMs: 10_000,
        describe: () => lines.items.map((line) => line.msg).join(' | '),
      });
      assert.equal(dead.attempts, 3);
      assert.equal(dead.level, 50, 'logged as an error');
      // Three failed attempts, each seen by the worker's 'failed' event; one line for all.
      assert.equal(linesOf(id, 'job failed').length, 3);
      assert.equal(linesOf(id, DEAD).length, 1);
      assert.equal(linesOf(recovers.id, 'job failed').length, 2);
      assert.equal(linesOf(recovers.id, DEAD).length, 0);
      assert.equal(linesOf(cancelled.id, DEAD).length, 0);
    });
  });
});
