import type { Response } from 'express';
import type { Accepted } from './types.js';

export const statusUrl = (id: string) => `/jobs/${id}`;

/**
 * 202 Accepted, `Location` on the status URL, and a body naming the job and where to watch it,
 * with the request's `summary` (for a replay, the first request's: see EnqueueOptions).
 */
export function sendAccepted(res: Response, accepted: Accepted): void {
  const url = statusUrl(accepted.id);
  const { id, name, state, replayed, summary } = accepted;
  // A replay's body is the first answer's (its state may have moved on); the header tells.
  if (replayed) res.set('Idempotent-Replayed', 'true');
  res
    .status(202)
    .location(url)
    .json({ ...summary, id, name, state, statusUrl: url, eventsUrl: `${url}/events` });
}
