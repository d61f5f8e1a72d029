/** Throw from a job to fail it at once: retrying cannot help (bad data, a 4xx from an API). */
export class PermanentError extends Error {
    name = 'PermanentError';
}
/** The payload does not match the job's input schema; nothing was enqueued. */
export class InvalidJobInputError extends PermanentError {
    name = 'InvalidJobInputError';
    problems;
    constructor(jobName, error) {
        const problems = error.issues.map((i) => `${i.path.join('.') || '(input)'}: ${i.message}`);
        super(`invalid input for job ${jobName}: ${problems.join('; ')}`);
        this.problems = problems;
    }
}
/** The queue cannot take the job right now (Redis down, full, or slow); nothing was enqueued. */
export class QueueUnavailableError extends Error {
    name = 'QueueUnavailableError';
    constructor(cause) {
        super('the job queue is unavailable, try again shortly', { cause });
    }
}
/** A run went past its job's `timeoutMs`. */
export class JobTimeoutError extends Error {
    name = 'JobTimeoutError';
    constructor(timeoutMs) {
        super(`timed out after ${timeoutMs} ms`);
    }
}
/**
 * Throw from a job to run it again after `delayMs` without spending an attempt: the call was
 * turned away, not failed (an HTTP 429 or 503 with Retry-After). With `scope: 'queue'` the
 * whole queue waits, in every worker (the provider's limit is for the whole account).
 */
export class RetryLaterError extends Error {
    delayMs;
    scope;
    name = 'RetryLaterError';
    constructor(delayMs, message = `asked to retry in ${delayMs} ms`, scope = 'job') {
        super(message);
        this.delayMs = delayMs;
        this.scope = scope;
    }
}
/**
 * What an outer signal's reason says for a cancel: BullMQ's `cancelJob` takes string reasons,
 * and `runJob` turns this one into a JobCancelledError for the handler.
 */
export const CANCEL_REASON = 'cancelled';
/** The job was cancelled (`DELETE /jobs/:id`): what its signal carries while it stops. */
export class JobCancelledError extends Error {
    name = 'JobCancelledError';
    constructor() {
        super('cancelled');
    }
}
/** Options that cannot both hold (an ETA after the expiry, ...); nothing was enqueued. */
export class InvalidEnqueueOptionsError extends PermanentError {
    name = 'InvalidEnqueueOptionsError';
}
