// The offloader's tracing seam. The offloader imports no tracing library: whoever wants traces
// (this app's src/process/telemetry-sdk.ts, with OpenTelemetry) hands it a `JobTracing`. Without one, nothing here
// runs and nothing is loaded, so an app that does not trace pays nothing.
import { UnrecoverableError, type Job, type Telemetry } from 'bullmq';
import { CANCEL_REASON } from './errors.js';
import type { JobData } from './types.js';

/** One run (attempt) of a job, as tracing sees it. */
export interface TracedRun {
  jobId: string;
  name: string;
  queue: string;
  /** 1 on the first run (BullMQ's attemptsStarted, as `ctx.attempt`). */
  attempt: number;
  /** Runs the job may have in all. */
  attempts: number;
  /** Epoch ms: when it was enqueued, when its countdown (if any) ended, when this run began. */
  enqueuedAt: number;
  readyAt: number;
  startedAt: number;
  /** BullMQ's propagation metadata (`opts.telemetry.metadata`): the enqueuer's context. */
  parent?: string | undefined;
}

/** How a run ended, as its span's status says. */
export type RunOutcome =
  | { kind: 'completed' }
  /** Failed; BullMQ runs it again after its backoff. */
  | { kind: 'retrying'; error: unknown }
  /** Failed for good: no attempt left, or a permanent error. The dead-letter list has it. */
  | { kind: 'dead-lettered'; error: unknown }
  | { kind: 'cancelled' }
  | { kind: 'expired'; reason: string }
  /** Put back without spending an attempt: retry-later, rate limit, shutdown. */
  | { kind: 'deferred'; reason: string };

export interface JobTracing {
  /** BullMQ's telemetry (bullmq-otel): its queues, flows and workers make the producer and
   * consumer spans, and carry the enqueuer's context in each job's options. */
  readonly telemetry: Telemetry;
  /** Runs one attempt of a job inside its own span (`fn` sees it as the active context). */
  run<T>(
    run: TracedRun,
    fn: () => Promise<T>,
    outcome: (result: Outcome<T>) => RunOutcome,
  ): Promise<T>;
}

export type Outcome<T> = { ok: true; value: T } | { ok: false; error: unknown };

/** BullMQ's errors that move a job elsewhere rather than fail it (see runner.ts). */
const DEFERRALS = new Set(['DelayedError', 'WaitingError', 'RateLimitError']);

/** What became of a run, from what the runner's processor returned or threw. */
export function classify(job: Job<JobData>, result: Outcome<unknown>): RunOutcome {
  if (result.ok) return { kind: 'completed' };
  const { error } = result;
  const name = error instanceof Error ? error.name : '';
  if (DEFERRALS.has(name)) return { kind: 'deferred', reason: name };
  if (error instanceof UnrecoverableError) {
    if (error.message === CANCEL_REASON) return { kind: 'cancelled' };
    if (job.data.outcome === 'expired') return { kind: 'expired', reason: error.message };
    return { kind: 'dead-lettered', error };
  }
  // BullMQ counts this failure after we return: it was the last if no attempt is left.
  const last = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
  return last ? { kind: 'dead-lettered', error } : { kind: 'retrying', error };
}

/** The runner's processor, each run inside a span of its own. */
export function traced<R>(
  tracing: JobTracing,
  processor: (job: Job<JobData>, token?: string) => Promise<R>,
): (job: Job<JobData>, token?: string) => Promise<R> {
  return (job, token) => {
    const enqueuedAt = job.timestamp;
    return tracing.run(
      {
        jobId: String(job.id),
        name: job.name,
        queue: job.queueName,
        attempt: job.attemptsStarted,
        attempts: job.opts.attempts ?? 1,
        enqueuedAt,
        readyAt: enqueuedAt + (job.opts.delay ?? 0),
        startedAt: job.processedOn ?? Date.now(),
        parent: job.opts.telemetry?.metadata,
      },
      () => processor(job, token),
      (result) => classify(job, result),
    );
  };
}
