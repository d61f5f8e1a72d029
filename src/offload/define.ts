import type { z } from 'zod';
import type { Logger } from '../logger.js';
import { InvalidJobInputError } from './errors.js';
import type { Offloader } from './offloader.js';

export interface RetryPolicy {
  /** Total runs, the first included. */
  attempts: number;
  backoff: 'fixed' | 'exponential';
  /** The first retry's delay; exponential doubles it each time. */
  delayMs: number;
  /** No retry waits longer than this (exponential backoff grows fast). */
  maxDelayMs?: number;
  /** 0..1: each delay is randomly shortened by up to this fraction, so retries do not stampede. */
  jitter?: number;
}

export interface JobContext<Deps = unknown> {
  jobId: string;
  /** 1 on the first run. */
  attempt: number;
  /** A child logger that carries the job id and the request id that enqueued it. */
  log: Logger;
  /** Fires on cancel, time limit or shutdown: long work should check it and stop. */
  signal: AbortSignal;
  /** 0..100, or any small JSON the status page can show. */
  progress(value: number | object): Promise<void>;
  /** What the process handed to every job (mailer, storage, ...): see src/deps.ts. */
  deps: Deps;
  /** Enqueues a follow-up job (give it a `key` so a re-run of this job does not add it twice). */
  enqueue: Offloader['enqueue'];
  /**
   * The results of the jobs this one waited for (a workflow's earlier steps, see workflow.ts),
   * in order; a step that failed under the `continue` policy is missing from it.
   */
  results(): Promise<unknown[]>;
}

/**
 * Runs a job periodically, like Celery beat: every `everyMs`, or on a cron pattern (in `tz`,
 * UTC by default). Each run gets `input` (default `{}`), validated like any other.
 */
export type Schedule<Input = unknown> = ({ everyMs: number } | { cron: string; tz?: string }) & {
  input?: Input;
};

export interface JobDefinition<
  Schema extends z.ZodType = z.ZodType,
  Result = unknown,
  Deps = never,
> {
  /** Equals the file name in jobs/; unique. */
  name: string;
  /** Named queue: workers can be started for some queues only (WORKER_QUEUES). */
  queue: string;
  /** Validated at enqueue and again in the worker: jobs already in Redis may be old. */
  input: Schema;
  retry: RetryPolicy;
  /**
   * Time limit for one run. When it passes the job's signal fires; the run fails with a
   * JobTimeoutError once the handler stops, or after `timeoutGraceMs` if it does not, and
   * whatever it returns late is discarded.
   */
  timeoutMs: number;
  /** How long a handler gets to stop after its signal fires (time limit or cancel). */
  timeoutGraceMs: number;
  /** Periodic runs, kept in Redis as a BullMQ job scheduler (see schedules.ts). */
  schedule?: Schedule<z.input<Schema>>;
  run(input: z.output<Schema>, ctx: JobContext<Deps>): Promise<Result>;
}

/**
 * Any job, whatever its input, result and dependencies: what registries and runners hold.
 * (`run` is declared as a method, so its parameters compare bivariantly and every job fits.)
 */
export type AnyJob = JobDefinition<z.ZodType, unknown, unknown>;

export const DEFAULT_RETRY: RetryPolicy = {
  attempts: 3,
  backoff: 'exponential',
  delayMs: 1_000,
  maxDelayMs: 5 * 60_000,
  jitter: 0.2,
};

/** The delay before retry number `attemptsMade` (1 = the first retry): capped, then jittered. */
export function backoffDelay(
  { backoff, delayMs, maxDelayMs = Infinity, jitter = 0 }: RetryPolicy,
  attemptsMade: number,
  random: () => number = Math.random,
): number {
  const growing = backoff === 'fixed' ? delayMs : delayMs * 2 ** Math.max(0, attemptsMade - 1);
  return Math.round(Math.min(growing, maxDelayMs) * (1 - jitter * random()));
}

/** The input as the job's schema parses it; an InvalidJobInputError names every problem. */
export function parseInput(job: AnyJob, input: unknown): unknown {
  const parsed = job.input.safeParse(input);
  if (!parsed.success) throw new InvalidJobInputError(job.name, parsed.error);
  return parsed.data;
}

const NAME = /^[a-z][a-z0-9-]*$/;

type Defaulted = 'retry' | 'timeoutMs' | 'timeoutGraceMs';

/** Declares a job. The result is a plain object: `job.run(input, ctx)` still works directly. */
export function defineJob<Schema extends z.ZodType, Result, Deps = never>(
  definition: Omit<JobDefinition<Schema, Result, Deps>, Defaulted> &
    Partial<Pick<JobDefinition<Schema, Result, Deps>, Defaulted>>,
): JobDefinition<Schema, Result, Deps> {
  for (const [what, value] of [
    ['name', definition.name],
    ['queue', definition.queue],
  ] as const) {
    if (!NAME.test(value)) throw new Error(`job ${what} "${value}" must match ${String(NAME)}`);
  }
  const { schedule, retry } = definition;
  if (retry && !(Number.isSafeInteger(retry.attempts) && retry.attempts >= 1)) {
    throw new Error(`job ${definition.name}: retry.attempts must be a whole number ≥ 1`);
  }
  if (retry && !(retry.delayMs >= 0 && (retry.jitter ?? 0) >= 0 && (retry.jitter ?? 0) <= 1)) {
    throw new Error(`job ${definition.name}: retry.delayMs must be ≥ 0 and jitter within 0..1`);
  }
  if (schedule) {
    if (
      'everyMs' in schedule &&
      !(Number.isSafeInteger(schedule.everyMs) && schedule.everyMs > 0)
    ) {
      throw new Error(`job ${definition.name}: schedule.everyMs must be a positive whole number`);
    }
    // A schedule whose input the job refuses would fail every run: refuse it now instead.
    if (!definition.input.safeParse(schedule.input ?? {}).success) {
      throw new Error(`job ${definition.name}: its input schema refuses the schedule's input`);
    }
  }
  return Object.freeze({
    retry: DEFAULT_RETRY,
    timeoutMs: 60_000,
    timeoutGraceMs: 5_000,
    ...definition,
  });
}
