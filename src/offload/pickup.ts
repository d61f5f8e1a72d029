// What a worker does with a job it picks up: drop it if it was cancelled or has expired, run
// it, and turn how it ended (completed, failed, cancelled, retry later, shutdown) into what
// BullMQ does next.
import {
  DelayedError,
  UnrecoverableError,
  WaitingError,
  Worker,
  type Job,
  type Queue,
} from 'bullmq';
import { CANCEL_REASON, JobCancelledError, PermanentError, RetryLaterError } from './errors.js';
import { startJob, type JobRun } from './execute.js';
import type { Logger } from './logger.js';
import type { Registry } from './registry.js';
import type { JobData, Offloader } from './types.js';

/** Why a job's signal fired when the worker is stopping. */
export class WorkerShutdownError extends Error {
  override name = 'WorkerShutdownError';
  constructor() {
    super('worker shutting down');
  }
}
/**
 * Retry-laters spend no attempt, so a job that is turned away forever would never end: after
 * this many pickups beyond its attempts, a retry-later counts as a failed attempt.
 */
const MAX_DEFERRALS = 25;

/** What every pickup in a runner shares. */
export interface Pickup<Deps> {
  registry: Registry;
  log: Logger;
  deps: Deps;
  /** Follow-ups' enqueue (the worker's connection). */
  enqueue: Offloader['enqueue'];
  /**
   * The runs under way in this process, by job id: cancels and the shutdown stop them. (Not
   * BullMQ's own signal: it would make an AbortController for every job, see execute.ts.)
   */
  running: Map<string, JobRun>;
  /** For RetryLaterError's queue scope: the queue whose rate limit pauses every worker. */
  limiterOf: (name: string) => Queue;
  /** True when a cancel for `id` came lately (see cancel.ts). */
  recentlyCancelled: (id: string) => boolean;
}

/** Ends a job without running it (again): it reads `outcome` from now on. */
async function drop(job: Job<JobData>, outcome: 'cancelled' | 'expired', at: number) {
  if (job.data.outcome !== outcome) await job.updateData({ ...job.data, outcome, outcomeAt: at });
  // A retry is a start too (as with Celery's `expires`): past the expiry, none happens.
  const start = job.attemptsMade > 0 ? 'retried' : 'started';
  throw new UnrecoverableError(
    outcome === 'expired'
      ? `expired: not ${start} by ${new Date(at).toISOString()}`
      : CANCEL_REASON,
  );
}

export async function processJob<Deps>(
  pickup: Pickup<Deps>,
  job: Job<JobData>,
  token?: string,
): Promise<unknown> {
  const { registry, log, running, limiterOf } = pickup;
  const definition = registry.get(job.name);
  if (!definition) throw new UnrecoverableError(`no job named "${job.name}" in this worker`);
  const jobLog = log.child({
    jobId: job.id,
    job: job.name,
    reqId: job.data.requestId,
    attempt: job.attemptsStarted,
  });
  const started = Date.now();
  const { expiresAt, outcome } = job.data;
  if (outcome === 'cancelled' || pickup.recentlyCancelled(String(job.id))) {
    jobLog.info(
      job.data.refused
        ? 'job whose enqueue was refused (answered 503): dropped'
        : 'job cancelled before it started: dropped',
    );
    await drop(job, 'cancelled', job.data.outcomeAt ?? started);
  }
  if (expiresAt !== undefined && started > expiresAt) {
    jobLog.warn({ expiresAt: new Date(expiresAt).toISOString() }, 'job expired: dropped');
    await drop(job, 'expired', expiresAt);
  }
  jobLog.info({ waitedMs: started - job.timestamp }, 'job started');
  const id = String(job.id);
  const run = startJob(definition, job.data.input, {
    jobId: id,
    attempt: job.attemptsStarted,
    log: jobLog,
    deps: pickup.deps,
    enqueue: pickup.enqueue,
    results: async () => inOrder(await job.getChildrenValues()),
    progress: (value) => job.updateProgress(value),
  });
  running.set(id, run);
  try {
    const result = await run.result;
    jobLog.info({ durationMs: Date.now() - started }, 'job completed');
    return result;
  } catch (error) {
    if (run.reason instanceof WorkerShutdownError) {
      // Not a failure: hand the job back without spending an attempt.
      await job.moveToWait(token);
      jobLog.warn('job interrupted by shutdown, put back in its queue');
      throw new WaitingError();
    }
    if (run.reason instanceof JobCancelledError) {
      jobLog.info({ durationMs: Date.now() - started }, 'job cancelled while running');
      await drop(job, 'cancelled', job.data.outcomeAt ?? Date.now());
    }
    const deferrals = job.attemptsStarted - job.attemptsMade - 1;
    if (error instanceof RetryLaterError && deferrals < MAX_DEFERRALS) {
      jobLog.info({ delayMs: error.delayMs, scope: error.scope }, `retry later: ${error.message}`);
      if (error.scope === 'queue') {
        // The whole queue waits, in every worker; this job goes back to the front.
        await limiterOf(job.queueName).rateLimit(error.delayMs);
        throw Worker.RateLimitError();
      }
      await job.moveToDelayed(Date.now() + error.delayMs, token);
      throw new DelayedError();
    }
    const permanent = error instanceof PermanentError;
    jobLog.warn({ err: error, durationMs: Date.now() - started, permanent }, 'job failed');
    if (permanent) throw new UnrecoverableError(error.message);
    throw error;
  } finally {
    running.delete(id);
  }
}

/** Children's results by their ids' step numbers (`<parent>.<n>`, see ids.ts), not hash order. */
function inOrder(values: Record<string, unknown>): unknown[] {
  const step = (key: string) => Number(/\.(\d+)$/.exec(key)?.[1] ?? 0);
  return Object.keys(values)
    .sort((a, b) => step(a) - step(b))
    .map((key) => values[key]);
}
