import type { z } from 'zod';

/** Throw from a job to fail it at once: retrying cannot help (bad data, a 4xx from an API). */
export class PermanentError extends Error {
  override name = 'PermanentError';
}

/** The payload does not match the job's input schema; nothing was enqueued. */
export class InvalidJobInputError extends PermanentError {
  override name = 'InvalidJobInputError';
  readonly problems: string[];
  constructor(jobName: string, error: z.ZodError) {
    const problems = error.issues.map((i) => `${i.path.join('.') || '(input)'}: ${i.message}`);
    super(`invalid input for job ${jobName}: ${problems.join('; ')}`);
    this.problems = problems;
  }
}

/** The queue cannot take the job right now (Redis down, full, or slow); nothing was enqueued. */
export class QueueUnavailableError extends Error {
  override name = 'QueueUnavailableError';
  constructor(cause?: unknown) {
    super('the job queue is unavailable, try again shortly', { cause });
  }
}

/**
 * An idempotency key came back with a different request than the one it was first used with
 * (another input, or another route): nothing was enqueued. HTTP answers 422.
 */
export class IdempotencyConflictError extends Error {
  override name = 'IdempotencyConflictError';
  constructor(readonly jobName: string) {
    super(
      `this idempotency key was first used with a different request for ${jobName}: use a new key for a new request`,
    );
  }
}

/** A run went past its job's `timeoutMs`. */
export class JobTimeoutError extends Error {
  override name = 'JobTimeoutError';
  constructor(timeoutMs: number) {
    super(`timed out after ${timeoutMs} ms`);
  }
}

/**
 * Throw from a job to run it again after `delayMs` without spending an attempt: the call was
 * turned away, not failed (an HTTP 429 or 503 with Retry-After). With `scope: 'queue'` the
 * whole queue waits, in every worker (the provider's limit is for the whole account).
 */
export class RetryLaterError extends Error {
  override name = 'RetryLaterError';
  constructor(
    readonly delayMs: number,
    message = `asked to retry in ${delayMs} ms`,
    readonly scope: 'job' | 'queue' = 'job',
  ) {
    super(message);
  }
}

/**
 * What an outer signal's reason says for a cancel: BullMQ's `cancelJob` takes string reasons,
 * and `runJob` turns this one into a JobCancelledError for the handler.
 */
export const CANCEL_REASON = 'cancelled';

/** A cancelled job's status `error`: the plain reason, the same in every mode and process. */
export const CANCELLED = 'cancelled on request';

/** The job was cancelled (`DELETE /jobs/:id`): what its signal carries while it stops. */
export class JobCancelledError extends Error {
  override name = 'JobCancelledError';
  constructor() {
    super('cancelled');
  }
}

/** Options that cannot both hold (an ETA after the expiry, ...); nothing was enqueued. */
export class InvalidEnqueueOptionsError extends PermanentError {
  override name = 'InvalidEnqueueOptionsError';
}

/** An `Idempotency-Key` header that is not 16 to 255 visible ASCII characters (HTTP 400). */
export class InvalidIdempotencyKeyError extends Error {
  override name = 'InvalidIdempotencyKeyError';
  constructor() {
    super('Idempotency-Key must be 16 to 255 visible ASCII characters (a random UUID is best)');
  }
}
