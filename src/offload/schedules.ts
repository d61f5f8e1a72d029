// Schedules as code: the `schedule` on each job definition is the truth, and Redis is made to
// match it whenever a worker starts. Upserting a BullMQ job scheduler under the job's name is
// idempotent, so several workers starting at once still create each run once.
import { Queue, type RepeatOptions } from 'bullmq';
import type { Cluster, Redis } from 'ioredis';
import type { Logger } from './logger.js';
import type { AnyJob, JobData } from './types.js';
import { jobOptions } from './job-options.js';
import type { Registry } from './registry.js';
import { isConnectionError } from './connection-error.js';

export interface ReconcileOptions {
  registry: Registry;
  /** Only these queues' schedules are touched: a worker reconciles what it consumes. */
  queues: readonly string[];
  connection: Redis | Cluster;
  prefix: string;
  log: Logger;
}

/** Upserts every declared schedule and removes the schedulers no job declares any more. */
export async function reconcileSchedules(options: ReconcileOptions): Promise<void> {
  const { registry, connection, prefix, log } = options;
  await Promise.all(
    options.queues.map(async (name) => {
      const queue = new Queue<JobData>(name, { connection, prefix });
      // A lost connection is logged by the connection itself, once per period, not per retry.
      queue.on('error', (error) => {
        if (!isConnectionError(error)) log.warn({ err: error, queue: name }, 'queue error');
      });
      try {
        const declared = registry.jobs.filter((job) => job.queue === name && job.schedule);
        for (const job of declared) await upsert(queue, job);
        const existing = await queue.getJobSchedulers();
        for (const { key } of existing) {
          if (!declared.some((job) => job.name === key)) {
            await queue.removeJobScheduler(key);
            log.info({ queue: name, schedule: key }, 'schedule removed: no job declares it');
          }
        }
        if (declared.length > 0) {
          log.info({ queue: name, schedules: declared.map((job) => job.name) }, 'schedules set');
        }
      } finally {
        await queue.close();
      }
    }),
  );
}

async function upsert(queue: Queue<JobData>, job: AnyJob): Promise<void> {
  const schedule = job.schedule;
  if (!schedule) return;
  const repeat: Omit<RepeatOptions, 'key'> =
    'everyMs' in schedule
      ? { every: schedule.everyMs }
      : { pattern: schedule.cron, tz: schedule.tz ?? 'UTC' };
  // Runs get scheduler-made ids (repeat:<name>:<time>); their other options are as enqueued.
  await queue.upsertJobScheduler(job.name, repeat, {
    name: job.name,
    data: { input: job.input.parse(schedule.input ?? {}) },
    opts: jobOptions(job),
  });
}
