import type { ErrorRequestHandler, Request, RequestHandler } from 'express';
import type { z } from 'zod';
import { answerThenDrain } from './drain.js';
import {
  fingerprint,
  IdempotencyConflictError,
  InvalidJobInputError,
  QueueUnavailableError,
} from './offload/index.js';

/** An error with an HTTP status whose message (and problems) the client may read. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly problems?: string[],
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

/** Parses `value` with `schema`, or throws a 400 naming every problem. */
export function parseOr400<Schema extends z.ZodType>(
  schema: Schema,
  value: unknown,
  what = 'body',
): z.output<Schema> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  throw new HttpError(
    400,
    `invalid ${what}`,
    result.error.issues.map((i) => `${i.path.join('.') || what}: ${i.message}`),
  );
}

/** Visible ASCII, long enough to be as unguessable as a job id: the key decides the job's id. */
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{16,255}$/;

/**
 * What every enqueue from a request passes along: the request id (it travels into the job's
 * logs) and the `Idempotency-Key` header, when given, so a retried POST returns the same job.
 */
export function enqueueOptions(req: Request): { requestId: string; key?: string } {
  const key = req.get('Idempotency-Key');
  if (key === undefined) return { requestId: req.id };
  if (!IDEMPOTENCY_KEY.test(key)) {
    throw new HttpError(
      400,
      'Idempotency-Key must be 16 to 255 visible ASCII characters (a random UUID is best)',
    );
  }
  return { requestId: req.id, key: `http:${key}` };
}

/**
 * What an Idempotency-Key is bound to: the route and the validated request (not the job's
 * input, which holds ids made per request). Only computed when the request has a key.
 */
export function keyedTo(
  req: Request,
  options: { key?: string },
  validated: unknown,
): { fingerprint?: string } {
  if (options.key === undefined) return {};
  const path = (req.route as { path?: unknown } | undefined)?.path;
  const route = `${req.method} ${req.baseUrl}${typeof path === 'string' ? path : req.path}`;
  return { fingerprint: fingerprint({ route, request: validated }) };
}

export const notFound: RequestHandler = (req, res) => {
  res.status(404).json({ error: `no route for ${req.method} ${req.path}` });
};

/** The one error middleware, last: 4xx name the problem; 5xx say nothing private and are logged. */
export const errorHandler: ErrorRequestHandler = (error: unknown, req, res, next) => {
  if (res.headersSent) {
    next(error);
    return;
  }
  const { status, body } = describe(error);
  if (status === 503) {
    res.set('Retry-After', '5');
    // Redis's own error (OOM, a timeout…) when there is one: what an operator greps for.
    const cause = (error as Error).cause;
    req.log.warn(
      { reason: (error as Error).message, ...(cause instanceof Error && { redis: cause.message }) },
      'service unavailable',
    );
  } else if (status >= 500) req.log.error({ err: error }, 'request failed');
  // Refused before its body was read (an upload over the limit): answer, then read off the
  // rest within bounds before closing, so clients that send it all before reading see this.
  if (!req.complete) answerThenDrain(req, res, status, body);
  else res.status(status).json(body);
};

function describe(error: unknown): { status: number; body: Record<string, unknown> } {
  if (error instanceof HttpError) {
    return { status: error.status, body: { error: error.message, problems: error.problems } };
  }
  if (error instanceof InvalidJobInputError) {
    return { status: 400, body: { error: 'invalid job input', problems: error.problems } };
  }
  if (error instanceof IdempotencyConflictError) {
    return {
      status: 422,
      body: {
        error:
          'Idempotency-Key was already used with a different request: send a new key for a new request',
      },
    };
  }
  if (error instanceof QueueUnavailableError) {
    return { status: 503, body: { error: error.message } };
  }
  // body-parser's errors (bad JSON, too large, wrong charset) carry a client status.
  const status = (error as { status?: unknown } | null)?.status;
  if (typeof status === 'number' && status >= 400 && status < 500 && error instanceof Error) {
    return { status, body: { error: error.message } };
  }
  return { status: 500, body: { error: 'internal error' } };
}
