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

/** A run went past its job's `timeoutMs`. */
export class JobTimeoutError extends Error {
  override name = 'JobTimeoutError';
  constructor(timeoutMs: number) {
    super(`timed out after ${timeoutMs} ms`);
  }
}
