import { InvalidJobInputError, QueueUnavailableError } from './offload/index.js';
/** An error with an HTTP status whose message (and problems) the client may read. */
export class HttpError extends Error {
    status;
    problems;
    constructor(status, message, problems) {
        super(message);
        this.status = status;
        this.problems = problems;
        this.name = 'HttpError';
    }
}
/** Parses `value` with `schema`, or throws a 400 naming every problem. */
export function parseOr400(schema, value, what = 'body') {
    const result = schema.safeParse(value);
    if (result.success)
        return result.data;
    throw new HttpError(400, `invalid ${what}`, result.error.issues.map((i) => `${i.path.join('.') || what}: ${i.message}`));
}
/** Visible ASCII, long enough to be as unguessable as a job id: the key decides the job's id. */
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{16,255}$/;
/**
 * What every enqueue from a request passes along: the request id (it travels into the job's
 * logs) and the `Idempotency-Key` header, when given, so a retried POST returns the same job.
 */
export function enqueueOptions(req) {
    const key = req.get('Idempotency-Key');
    if (key === undefined)
        return { requestId: req.id };
    if (!IDEMPOTENCY_KEY.test(key)) {
        throw new HttpError(400, 'Idempotency-Key must be 16 to 255 visible ASCII characters (a random UUID is best)');
    }
    return { requestId: req.id, key: `http:${key}` };
}
export const notFound = (req, res) => {
    res.status(404).json({ error: `no route for ${req.method} ${req.path}` });
};
/** The one error middleware, last: 4xx name the problem; 5xx say nothing private and are logged. */
export const errorHandler = (error, req, res, next) => {
    if (res.headersSent) {
        next(error);
        return;
    }
    const { status, body } = describe(error);
    // A request refused mid-body (an upload over the limit): close the connection after the
    // answer instead of reading, and throwing away, the rest of what the client sends.
    if (!req.complete)
        res.set('Connection', 'close');
    if (status === 503) {
        res.set('Retry-After', '5');
        req.log.warn({ reason: error.message }, 'service unavailable');
    }
    else if (status >= 500)
        req.log.error({ err: error }, 'request failed');
    res.status(status).json(body);
};
function describe(error) {
    if (error instanceof HttpError) {
        return { status: error.status, body: { error: error.message, problems: error.problems } };
    }
    if (error instanceof InvalidJobInputError) {
        return { status: 400, body: { error: 'invalid job input', problems: error.problems } };
    }
    if (error instanceof QueueUnavailableError) {
        return { status: 503, body: { error: error.message } };
    }
    // body-parser's errors (bad JSON, too large, wrong charset) carry a client status.
    const status = error?.status;
    if (typeof status === 'number' && status >= 400 && status < 500 && error instanceof Error) {
        return { status, body: { error: error.message } };
    }
    return { status: 500, body: { error: 'internal error' } };
}
