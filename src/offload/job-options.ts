// What every run of a job shares in BullMQ: its attempts, backoff and how long it is kept.
import type { JobsOptions } from 'bullmq';
import type { AnyJob } from './types.js';

/** How long finished jobs stay readable: seconds (and at most so many per queue). */
export interface Retention {
  completed: { age: number; count: number };
  failed: { age: number; count: number };
}

/** RESULT_TTL and FAILED_TTL's defaults. */
export const RETENTION: Retention = retention(24 * 3600, 7 * 24 * 3600);

/** Completed jobs kept `resultTtl` s (at most 10,000 a queue); failed ones `failedTtl` s. */
export function retention(resultTtl: number, failedTtl: number): Retention {
  return {
    completed: { age: resultTtl, count: 10_000 },
    failed: { age: failedTtl, count: 50_000 },
  };
}

/** Backoff type of every job: the runner computes it from the job's RetryPolicy (a cap). */
export const BACKOFF_TYPE = 'offload';

/**
 * What every run of a job shares. Required, so that a field added here must be added to the
 * field-by-field copy in `addOptions` (queue-submit.ts) too, or the build fails.
 */
export type RunOptions = Required<
  Pick<JobsOptions, 'attempts' | 'backoff' | 'removeOnComplete' | 'removeOnFail'>
>;

/** BullMQ options for a job's runs, from its definition (the id is added per enqueue). */
export function jobOptions(job: AnyJob, kept: Retention = RETENTION): RunOptions {
  return {
    attempts: job.retry.attempts,
    // The delay itself comes from the runner's backoff strategy (capped, jittered): see define.ts.
    backoff: { type: BACKOFF_TYPE, delay: job.retry.delayMs },
    removeOnComplete: kept.completed,
    removeOnFail: kept.failed,
  };
}
