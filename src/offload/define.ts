import type { z } from 'zod';
import { InvalidJobInputError } from './errors.js';
import type { AnyJob, JobDefinition, RetryPolicy } from './types.js';

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
