import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import { z } from 'zod';
import { createLogger } from '../../src/logger.js';
import {
  child,
  createInlineOffloader,
  createQueueOffloader,
  createRegistry,
  defineJob,
  JOB_ID,
  PermanentError,
  startRunner,
  type JobStatus,
  type Offloader,
  type Runner,
} from '../../src/offload/index.js';
import { createProducerConnection, createWorkerConnection } from '../../src/redis/connections.js';
import { eventually } from '../harness/app.js';
import { sharedRedisUrl } from '../harness/global.js';

const log = createLogger('silent', 'test');

/** Which parents ran, and with what: a parent must run after its children, or not at all. */
const parentRuns: string[] = [];

const step = defineJob({
  name: 'wf-step',
  queue: 'wf',
  input: z.strictObject({ units: z.int().min(1), fail: z.boolean().default(false) }),
  retry: { attempts: 1, backoff: 'fixed', delayMs: 10 },
  async run({ units, fail }, ctx) {
    for (let done = 1; done <= units; done += 1) await ctx.progress({ done, total: units });
    if (fail) throw new PermanentError('this step was told to fail');
    return { units };
  },
});

const collect = defineJob({
  name: 'wf-collect',
  queue: 'wf',
  input: z.strictObject({ tag: z.string() }),
  retry: { attempts: 1, backoff: 'fixed', delayMs: 10 },
  run({ tag }) {
    parentRuns.push(tag);
    return Promise.resolve({ tag });
  },
});

const registry = createRegistry([step, collect]);

interface Setup {
  offloader: Offloader;
  /** Waits for the job's final status. */
  final(id: string): Promise<JobStatus>;
  close(): Promise<void>;
  /** Jobs in Redis (queue mode only). */
  count?: () => Promise<number>;
}

async function queueSetup(): Promise<Setup> {
  const url = sharedRedisUrl();
  const prefix = `w${randomUUID().slice(0, 8)}`;
  const connection = createProducerConnection(url, log);
  await new Promise((resolve) => connection.once('ready', resolve));
  const workerConnection = createWorkerConnection(url, log);
  const offloader = createQueueOffloader({
    registry,
    connection,
    eventsConnection: () => createWorkerConnection(url, log),
    prefix,
    log,
  });
  const runner: Runner = startRunner({
    registry,
    queues: '*',
    connection: workerConnection,
    prefix,
    concurrency: { default: 4 },
    lockMs: 5_000,
    stalledIntervalMs: 5_000,
    deps: {},
    log,
  });
  const inspector = new Queue('wf', { connection: { url }, prefix });
  return {
    offloader,
    final: (id) =>
      eventually(async () => {
        const status = await offloader.status(id);
        return status && ['completed', 'failed'].includes(status.state) ? status : undefined;
      }),
    count: async () => Object.values(await inspector.getJobCounts()).reduce((sum, n) => sum + n, 0),
    async close() {
      await runner.close(Date.now() + 2_000);
      await inspector.close();
      await offloader.close();
      await Promise.all([connection.quit(), workerConnection.quit()]);
    },
  };
}

function inlineSetup(): Setup {
  const offloader = createInlineOffloader({ deps: {}, log });
  return {
    offloader,
    final: async (id) => {
      const status = await offloader.status(id);
      assert.ok(status, `inline job ${id} is known`);
      return status;
    },
    close: () => Promise.resolve(),
  };
}

for (const mode of ['queue', 'inline'] as const) {
  describe(`workflows and idempotency keys (${mode} mode)`, () => {
    let setup: Setup;
    before(async () => {
      setup = mode === 'queue' ? await queueSetup() : inlineSetup();
    });
    after(() => setup.close());

    it('when children are given, then the parent runs after all of them, with their progress added up', async () => {
      const tag = `ok-${mode}`;
      const accepted = await setup.offloader.enqueue(
        collect,
        { tag },
        {
          children: [
            child(step, { units: 2 }),
            child(step, { units: 3 }),
            child(step, { units: 5 }),
          ],
          progressTotal: 10,
        },
      );
      const status = await setup.final(accepted.id);
      assert.equal(status.state, 'completed', status.error);
      assert.deepEqual(status.result, { tag });
      assert.deepEqual(status.progress, { done: 10, total: 10 });
      assert.ok(parentRuns.includes(tag));
    });

    it('when a child fails for good, then the parent fails naming it and its reason, and never runs', async () => {
      const tag = `failing-${mode}`;
      const accepted = await setup.offloader.enqueue(
        collect,
        { tag },
        { children: [child(step, { units: 1 }), child(step, { units: 1, fail: true })] },
      );
      const status = await setup.final(accepted.id);
      assert.equal(status.state, 'failed');
      assert.match(
        status.error ?? '',
        new RegExp(`^wf-step ${accepted.id}\\.1 failed: this step was told to fail$`),
      );
      assert.ok(!parentRuns.includes(tag), 'the parent did not run');
      assert.equal(status.attempts, 0, 'no run of the parent was counted');
      assert.equal(status.startedAt, undefined);
    });

    it('when a child input is invalid, then nothing is enqueued at all', async () => {
      const before = await setup.count?.();
      await assert.rejects(
        setup.offloader.enqueue(
          collect,
          { tag: 'never' },
          { children: [child(step, { units: 0 })] }, // typed fine, but under the minimum
        ),
        /invalid input for job wf-step/,
      );
      assert.equal(await setup.count?.(), before);
    });

    it('when the same key is enqueued again, even at once, then the same job comes back and runs once', async () => {
      const key = `key-${randomUUID()}`;
      const tag = `keyed-${mode}`;
      const accepted = await Promise.all(
        Array.from({ length: mode === 'queue' ? 10 : 1 }, () =>
          setup.offloader.enqueue(collect, { tag }, { key }),
        ),
      );
      const ids = new Set(accepted.map((a) => a.id));
      assert.equal(ids.size, 1);
      const [id] = [...ids];
      assert.match(id ?? '', JOB_ID, 'a keyed id is still a UUID (version 8)');
      await setup.final(id ?? '');
      const again = await setup.offloader.enqueue(collect, { tag }, { key });
      assert.equal(again.id, id);
      assert.equal(again.state, 'completed', 'a repeat reports the first job as it is now');
      assert.equal(parentRuns.filter((t) => t === tag).length, 1, 'ran once');

      const other = await setup.offloader.enqueue(
        collect,
        { tag: `${tag}-2` },
        { key: `${key}-2` },
      );
      assert.notEqual(other.id, id, 'another key is another job');
      await setup.final(other.id);
    });
  });
}
