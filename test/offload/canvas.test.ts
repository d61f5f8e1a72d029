import assert from 'node:assert/strict';
import { z } from 'zod';
import {
  chain,
  chord,
  chunks,
  createInlineOffloader,
  defineJob,
  FINAL_STATES,
  group,
  InvalidJobInputError,
  PermanentError,
  step,
  type JobStatus,
  type Offloader,
} from '../../src/offload/index.js';
import { compile } from '../../src/offload/workflow.js';
import { eventually } from '../harness/app.js';
import { silentLog, startRuntime, type Runtime } from '../harness/runtime.js';

/** How a step reads what the steps before it returned: validated, like any input. */
const numbers = z.array(z.number());

/** `n`, or, in a chain, the previous step's result plus `n`. */
const add = defineJob({
  name: 'cv-add',
  queue: 'cv',
  input: z.strictObject({ n: z.number() }),
  retry: { attempts: 1, backoff: 'fixed', delayMs: 0 },
  async run({ n }, ctx) {
    const before = numbers.parse(await ctx.results());
    await ctx.progress({ done: 1, total: 1 });
    return (before[0] ?? 0) + n;
  },
});

const times = defineJob({
  name: 'cv-times',
  queue: 'cv-other', // a second queue: workflows cross queues
  input: z.strictObject({ by: z.number() }),
  retry: { attempts: 1, backoff: 'fixed', delayMs: 0 },
  async run({ by }, ctx) {
    const [previous = 1] = numbers.parse(await ctx.results());
    return previous * by;
  },
});

const sum = defineJob({
  name: 'cv-sum',
  queue: 'cv',
  input: z.strictObject({}),
  retry: { attempts: 1, backoff: 'fixed', delayMs: 0 },
  async run(_input, ctx) {
    return numbers.parse(await ctx.results()).reduce((a, b) => a + b, 0);
  },
});

const broken = defineJob({
  name: 'cv-broken',
  queue: 'cv',
  input: z.strictObject({}),
  retry: { attempts: 1, backoff: 'fixed', delayMs: 0 },
  run: () => Promise.reject(new PermanentError('broken on purpose')),
});

/** Takes a chunk of numbers and sums it. */
const sumChunk = defineJob({
  name: 'cv-sum-chunk',
  queue: 'cv',
  input: z.strictObject({ values: z.array(z.number()), from: z.int() }),
  retry: { attempts: 1, backoff: 'fixed', delayMs: 0 },
  run: ({ values }) => Promise.resolve(values.reduce((a, b) => a + b, 0)),
});

/** Runs until its signal fires (a cancel): the workflow's long step. */
const hold = defineJob({
  name: 'cv-hold',
  queue: 'cv-hold',
  input: z.strictObject({}),
  retry: { attempts: 1, backoff: 'fixed', delayMs: 0 },
  timeoutGraceMs: 5_000,
  // Half its work done, then it holds until cancelled.
  run: async (_input, ctx) => {
    await ctx.progress({ done: 1, total: 2 });
    return new Promise((_, reject) => {
      ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason as Error), {
        once: true,
      });
    });
  },
});

const jobs = [add, times, sum, broken, sumChunk, hold];

for (const mode of ['queue', 'inline'] as const) {
  describe(`workflows: chain, group, chord, chunks (${mode} mode)`, () => {
    let rt: Runtime | undefined;
    let offloader: Offloader;
    const final = async (id: string): Promise<JobStatus> => {
      if (rt) return rt.until(id, (s) => FINAL_STATES.has(s.state), 15_000);
      const status = await offloader.status(id);
      assert.ok(status, `inline job ${id} is known`);
      return status;
    };

    before(async () => {
      if (mode === 'queue') {
        rt = await startRuntime(jobs);
        rt.startWorker();
        offloader = rt.offloader;
      } else {
        offloader = createInlineOffloader({ deps: {}, log: silentLog });
      }
    });
    after(() => rt?.close());

    it('when steps are chained, then each runs after the one before, with its result', async () => {
      const { id, name } = await offloader.start(
        chain(step(add, { n: 2 }), step(times, { by: 10 }), step(add, { n: 1 })),
      );
      assert.equal(name, 'cv-add', 'the accepted job is the last step');
      const status = await final(id);
      assert.equal(status.state, 'completed', status.error);
      assert.equal(status.result, 2 * 10 + 1);
    });

    it('when jobs are grouped, then they run in parallel and the group returns their results in order', async () => {
      const { id } = await offloader.start(
        group([step(add, { n: 1 }), step(times, { by: 7 }), step(add, { n: 3 })]),
      );
      const status = await final(id);
      assert.equal(status.state, 'completed', status.error);
      assert.deepEqual(status.result, [1, 7, 3]);
      assert.deepEqual(status.progress, { done: 2, total: 2 }, 'members’ progress adds up');
    });

    it('when a chord runs, then its callback gets every header result', async () => {
      const { id } = await offloader.start(
        chord([step(add, { n: 1 }), step(add, { n: 2 }), step(add, { n: 4 })], step(sum, {})),
      );
      const status = await final(id);
      assert.equal(status.state, 'completed', status.error);
      assert.equal(status.result, 7);
    });

    it('when items are chunked, then each chunk is one job, and a chord adds them up', async () => {
      const values = Array.from({ length: 25 }, (_, i) => i + 1);
      const header = chunks(sumChunk, values, 10, (chunk, from) => ({ values: chunk, from }));
      assert.equal(header.members.length, 3);
      const { id } = await offloader.start(chain(header, step(sum, {})));
      const status = await final(id);
      assert.equal(status.result, (25 * 26) / 2);
    });

    it('when a member fails under the default policy, then the callback fails without running, naming it', async () => {
      const { id } = await offloader.start(
        chord([step(add, { n: 1 }), step(broken, {})], step(sum, {})),
      );
      const status = await final(id);
      assert.equal(status.state, 'failed');
      assert.match(status.error ?? '', /cv-broken \S+ failed: broken on purpose/);
      assert.equal(status.attempts, 0, 'the callback never ran');
    });

    it('when a member fails under the continue policy, then the callback runs with the others’ results', async () => {
      const { id } = await offloader.start(
        chord([step(add, { n: 5 }), step(broken, {}), step(add, { n: 6 })], step(sum, {}), {
          onFailure: 'continue',
        }),
      );
      const status = await final(id);
      assert.equal(status.state, 'completed', status.error);
      assert.equal(status.result, 11);
    });

    it('when any step’s input is bad, then the workflow is refused and nothing is added', async () => {
      const counts = () =>
        Promise.all(['cv', 'cv-other'].map((q) => (rt ? rt.countJobs(q) : Promise.resolve(0))));
      const before = await counts();
      await assert.rejects(
        offloader.start(
          chain(step(add, { n: 1 }), step(times, { by: 'ten' as unknown as number })),
        ),
        InvalidJobInputError,
      );
      assert.deepEqual(await counts(), before);
    });
  });
}

describe('workflows: cancel (queue mode)', () => {
  it('when a workflow is cancelled, then its running and waiting steps stop and it reads cancelled', async () => {
    const rt = await startRuntime(jobs);
    try {
      // One worker for cv-hold at concurrency 1: one step runs, the other waits behind it.
      rt.startWorker({ queues: ['cv', 'cv-hold'], concurrency: { default: 1 } });
      const { id } = await rt.offloader.start(
        chord([step(hold, {}), step(hold, {})], step(sum, {})),
      );
      const [running, waiting] = [`${id}.0`, `${id}.1`];
      await eventually(async () =>
        (await rt.bullJob('cv-hold', running))?.progress ? true : undefined,
      );
      const cancelled = await rt.offloader.cancel(id);
      assert.equal(cancelled?.status.state, 'cancelled');
      assert.equal(cancelled.changed, true);
      // What cancel answers is what status reads, progress included.
      const { done } = cancelled.status.progress as { done: number; total: number };
      assert.ok(done >= 1, 'the running step’s progress shows');
      assert.deepEqual(cancelled.status, await rt.offloader.status(id));
      assert.equal(cancelled.status.error, 'cancelled on request');
      for (const stepId of [running, waiting]) {
        const job = await eventually(async () => {
          const found = await rt.bullJob('cv-hold', stepId);
          return found?.finishedOn ? found : undefined;
        });
        assert.equal(job.failedReason, 'cancelled', `step ${stepId}`);
      }
      const status = await rt.until(id, (s) => s.state === 'cancelled' && !!s.finishedAt);
      assert.equal(status.attempts, 0, 'the last step never ran');
      // Once BullMQ has failed the parent for its dropped child, it still says why plainly:
      // cancelled, never "child <internal key> failed".
      await eventually(async () => ((await rt.bullJob('cv', id))?.failedReason ? true : undefined));
      const settled = await rt.offloader.status(id);
      assert.equal(settled?.state, 'cancelled');
      assert.equal(settled.error, 'cancelled on request');
      assert.deepEqual(settled.progress, cancelled.status.progress);
      // Cancelling again changes nothing, and says so.
      const again = await rt.offloader.cancel(id);
      assert.equal(again?.changed, false);
      assert.deepEqual(again.status, settled);
    } finally {
      await rt.close();
    }
  });
});

describe('workflow compiler', () => {
  it('when a group follows a step in a chain, then it is refused: a flow is a tree', () => {
    assert.throws(
      () => compile(chain(step(add, { n: 1 }), group([step(add, { n: 2 })]))),
      /only the first step may be a group/,
    );
  });

  it('when chains nest, then they flatten into one line of steps', () => {
    const node = compile(chain(chain(step(add, { n: 1 }), step(add, { n: 2 })), step(sum, {})));
    assert.equal(node.job.name, 'cv-sum');
    assert.equal(node.children.at(0)?.job.name, 'cv-add');
    const first = node.children.at(0)?.children.at(0);
    assert.equal(first?.job.name, 'cv-add');
    assert.equal(first.children.length, 0);
  });
});
