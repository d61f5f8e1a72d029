// The offloader's Express face, besides the jobs routes (router.ts): what an enqueue route
// passes along from its request, the 202 it answers, and the answers the core's errors get.
import type { ErrorRequestHandler, Request, Response } from 'express';
import {
  IdempotencyConflictError,
  InvalidIdempotencyKeyError,
  InvalidJobInputError,
  QueueUnavailableError,
} from './errors.js';
import { fingerprint } from './idempotency.js';
import type { Accepted } from './types.js';

/** Where the jobs routes are mounted unless told otherwise (see router.ts). */
export const JOBS_PATH = '/jobs';

export const statusUrl = (id: string, basePath = JOBS_PATH) => `${basePath}/${id}`;

/**
 * 202 Accepted, `Location` on the status URL, and a body naming the job and where to watch it,
 * with the request's `summary` (for a replay, the first request's: see EnqueueOptions).
 * `basePath` is where the jobs routes are mounted.
 */
export function sendAccepted(res: Response, accepted: Accepted, basePath = JOBS_PATH): void {
  const url = statusUrl(accepted.id, basePath);
  const { id, name, state, replayed, summary } = accepted;
  // A replay's body is the first answer's (its state may have moved on); the header tells.
  if (replayed) res.set('Idempotent-Replayed', 'true');
  res
    .status(202)
    .location(url)
    .json({ ...summary, id, name, state, statusUrl: url, eventsUrl: `${url}/events` });
}

/** Visible ASCII, long enough to be as unguessable as a job id: the key decides the job's id. */
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{16,255}$/;

/**
 * What every enqueue from a request passes along: the request id (`req.id`, set by the app's
 * request logging, travels into the job's logs) and the `Idempotency-Key` header, when given,
 * so a retried POST returns the same job. A malformed key throws InvalidIdempotencyKeyError.
 */
export function enqueueOptions(req: Request): { requestId?: string; key?: string } {
  const { id } = req as { id?: unknown };
  const requestId = typeof id === 'string' ? { requestId: id } : {};
  const key = req.get('Idempotency-Key');
  if (key === undefined) return requestId;
  if (!IDEMPOTENCY_KEY.test(key)) throw new InvalidIdempotencyKeyError();
  return { ...requestId, key: `http:${key}` };
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

/**
 * An enqueue route's options in one call: `enqueueOptions` and, with a key, `keyedTo` the
 * validated request. (A route that must refuse a bad key before reading a large body calls
 * the two apart.)
 */
export function requestOptions(
  req: Request,
  validated: unknown,
): { requestId?: string; key?: string; fingerprint?: string } {
  const options = enqueueOptions(req);
  return { ...options, ...keyedTo(req, options, validated) };
}

/** The HTTP answer to one of the core's errors, or undefined for any other error. */
export function errorResponse(
  error: unknown,
): { status: number; body: Record<string, unknown> } | undefined {
  if (error instanceof InvalidIdempotencyKeyError) {
    return { status: 400, body: { error: error.message } };
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
  return undefined;
}

/**
 * An error middleware for an app without its own mapping: answers the core's errors (a 503
 * with Retry-After) and passes any other on. An app with one error handler calls
 * `errorResponse` from it instead.
 */
export const offloadErrors: ErrorRequestHandler = (error: unknown, _req, res, next) => {
  const answer = res.headersSent ? undefined : errorResponse(error);
  if (!answer) {
    next(error);
    return;
  }
  if (answer.status === 503) res.set('Retry-After', '5');
  res.status(answer.status).json(answer.body);
};
