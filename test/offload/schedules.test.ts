import assert from 'node:assert/strict';
import { Queue, type JobType } from 'bullmq';
import { z } from 'zod';
import { cleanStorage } from '../../jobs/index.js';
import { defineJob } from '../../src/offload/index.js';
import { createTestApp, eventually, type TestApp } from '../harness/app.js';

const HOUR = 3_600_000;

/** BullMQ's id for the run a scheduler makes at `millis`. */
const runId = (scheduler: string, millis: number) => `repeat:${scheduler}:${millis}`;

describe('schedules', () => {
  describe('reconciled by the workers at start', () => {
    let t: TestApp;
    let queue: Queue;

    beforeEach(async () => {
      t = await createTestApp();
      queue = new Queue('media', {
        connection: { url: t.config.REDIS_URL },
        prefix: t.config.QUEUE_PREFIX,
      });
    });
    afterEach(async () => {
      await queue.close();
      await t.close();
    });

    /** The ids of jobs named `name`, by state. */
    async function runs(name: string) {
      const states: JobType[] = ['waiting', 'delayed', 'active', 'completed', 'failed'];
      const byState = await Promise.all(
        states.map(async (state) => {
          const jobs = await queue.getJobs([state]);
          return [state, jobs.filter((job) => job.name === name).map((job) => job.id)] as const;
        }),
      );
      return Object.fromEntries(byState) as Record<(typeof states)[number], string[]>;
    }

    it('when two worker sets start at once, then there is one scheduler, one run at once, and one next run an hour later', async () => {
      const a = t.startWorkers();
      const b = t.startWorkers();
      await Promise.all([a.schedules, b.schedules]);

      const schedulers = await queue.getJobSchedulers();
      assert.deepEqual(
        schedulers.map(({ key, every }) => ({ key, every })),
        [{ key: cleanStorage.name, every: HOUR }],
      );

      // BullMQ 6: an `every` scheduler's first run is due at once (delay 0), and the next one is
      // made, delayed by `every`, when that run starts. The second upsert replaces the pending
      // run under the same id (or, once it started, keeps the next one): it never adds another.
      const seen = await eventually(
        async () => {
          const now = await runs(cleanStorage.name);
          return now.completed.length > 0 && now.delayed.length > 0 ? now : undefined;
        },
        10_000,
        'the first run completed and the next one was scheduled',
      );
      assert.equal(seen.completed.length, 1, `one run at once: ${JSON.stringify(seen)}`);
      assert.deepEqual(
        { waiting: seen.waiting, active: seen.active, failed: seen.failed },
        { waiting: [], active: [], failed: [] },
      );
      const first = Number(/^repeat:clean-storage:(\d+)$/.exec(seen.completed[0]!)?.[1]);
      assert.ok(first > 0, `a scheduler-made id: ${seen.completed[0]!}`);
      assert.deepEqual(seen.delayed, [runId(cleanStorage.name, first + HOUR)], 'one next run');
      assert.equal((await queue.getJobSchedulers())[0]?.next, first + HOUR);

      const done = await queue.getJob(seen.completed[0]!);
      assert.deepEqual(done?.returnvalue, { deleted: 0, kept: 0 }, 'the run ran clean-storage');
    });

    it('when Redis holds a scheduler no job declares, then the workers remove it and keep the declared one', async () => {
      await queue.upsertJobScheduler('retired-job', { every: 60_000 }, { name: 'retired-job' });
      assert.deepEqual(
        (await queue.getJobSchedulers()).map(({ key }) => key),
        ['retired-job'],
      );

      const runner = t.startWorkers();
      await runner.schedules;

      assert.deepEqual(
        (await queue.getJobSchedulers()).map(({ key }) => key),
        [cleanStorage.name],
      );
      // Its run that was already due fails (no worker knows the job); none comes after it.
      const left = await eventually(
        async () => {
          const now = await runs('retired-job');
          return now.waiting.length + now.active.length === 0 ? now : undefined;
        },
        10_000,
        'the retired run that was due is done',
      );
      assert.deepEqual(left.delayed, [], 'no later run of the retired job');
      assert.equal(left.failed.length, 1, JSON.stringify(left));
      const failed = await queue.getJob(left.failed[0]!);
      assert.match(failed?.failedReason ?? '', /no job named "retired-job"/);
    });
  });

  describe('declared with defineJob', () => {
    const base = { name: 'tick', queue: 'media', run: () => Promise.resolve() };

    it('when everyMs is not a positive whole number, then the definition is refused', () => {
      for (const everyMs of [0, -1_000, 1.5, Number.NaN]) {
        assert.throws(
          () => defineJob({ ...base, input: z.strictObject({}), schedule: { everyMs } }),
          /job tick: schedule\.everyMs must be a positive whole number/,
          String(everyMs),
        );
      }
      // The control: a good one passes.
      const job = defineJob({ ...base, input: z.strictObject({}), schedule: { everyMs: 1_000 } });
      assert.deepEqual(job.schedule, { everyMs: 1_000 });
    });

    it("when the job's schema refuses the schedule's input, then the definition is refused", () => {
      const input = z.strictObject({ days: z.number().int().min(1) });
      for (const schedule of [{ everyMs: 1_000 }, { everyMs: 1_000, input: { days: 0 } }]) {
        assert.throws(
          () => defineJob({ ...base, input, schedule }),
          /job tick: its input schema refuses the schedule's input/,
          JSON.stringify(schedule),
        );
      }
      assert.throws(
        () => defineJob({ ...base, input, schedule: { cron: '0 3 * * *', input: { days: -1 } } }),
        /refuses the schedule's input/,
      );
      const job = defineJob({ ...base, input, schedule: { everyMs: 1_000, input: { days: 7 } } });
      assert.deepEqual(job.schedule?.input, { days: 7 });
    });
  });
});
