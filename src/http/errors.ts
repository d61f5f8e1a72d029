import type { ErrorRequestHandler, RequestHandler } from 'express';
import type { z } from 'zod';
import { answerThenDrain } from './drain.js';
import { errorResponse } from '../offload/index.js';

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
  // The offloader's own (invalid input, a bad or reused Idempotency-Key, Redis away).
  const offloadAnswer = errorResponse(error);
  if (offloadAnswer) return offloadAnswer;
  // body-parser's errors (bad JSON, too large, wrong charset) carry a client status.
  const status = (error as { status?: unknown } | null)?.status;
  if (typeof status === 'number' && status >= 400 && status < 500 && error instanceof Error) {
    return { status, body: { error: error.message } };
  }
  return { status: 500, body: { error: 'internal error' } };
}
