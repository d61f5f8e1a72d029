import type { Job } from 'bullmq';
import { CANCELLED } from './errors.js';
import type { JobData, JobState, JobStatus } from './types.js';

/** States a job never leaves (unless an admin replays it). */
export const FINAL_STATES: ReadonlySet<JobState> = new Set([
  'completed',
  'failed',
  'expired',
  'cancelled',
]);

/** Progress as work items: what a workflow's children report, and their parent adds up. */
export interface Progress {
  done: number;
  total: number;
}

/** `{done, total}` from a job's progress, as stored (JSON text) or as reported; else undefined. */
export function parseProgress(value: unknown): Progress | undefined {
  let parsed = value;
  if (typeof value === 'string') {
    try {
      parsed = JSON.parse(value);
    } catch {
      return undefined; // not JSON: a plain string is not a count
    }
  }
  const { done, total } = (parsed ?? {}) as Partial<Progress>;
  return typeof done === 'number' && typeof total === 'number' ? { done, total } : undefined;
}

/** Adds up the `{done, total}` among `values` (anything else counts as nothing). */
export function sumProgress(values: readonly unknown[]): Progress {
  const sum = { done: 0, total: 0 };
  for (const value of values) {
    const progress = parseProgress(value);
    sum.done += progress?.done ?? 0;
    sum.total += progress?.total ?? 0;
  }
  return sum;
}

export function toState(bullState: string): JobState {
  switch (bullState) {
    case 'completed':
    case 'failed':
    case 'active':
    case 'delayed':
      return bullState;
    default:
      return 'waiting';
  }
}

const iso = (ms: number | undefined) => (ms ? new Date(ms).toISOString() : undefined);

/**
 * A BullMQ job as a caller sees it. A job marked cancelled (or dropped at pickup as expired)
 * reads so at once, though a worker may not have taken it out of its queue yet; one still
 * waiting past its expiry reads as expired, since it can never run. A job that completed
 * anyway (its cancel came too late) reads as completed.
 */
export function toStatus(job: Job<JobData>, bullState: string, now = Date.now()): JobStatus {
  let state = toState(bullState);
  const { outcome, outcomeAt, expiresAt } = job.data;
  const unstarted = state === 'waiting' || state === 'delayed';
  if (outcome && state !== 'completed') state = outcome;
  else if (unstarted && expiresAt !== undefined && now > expiresAt) state = 'expired';
  // A marked job ended at its mark, whenever its worker then stops it (so a cancel's answer
  // and every later read agree).
  const finishedOn = state === outcome && outcomeAt !== undefined ? outcomeAt : job.finishedOn;
  // Marked before its last pickup: that pickup only dropped it, the handler never ran. A
  // refused job is only ever marked before its first (see settle.ts); the worker's clock, which
  // stamps the pickup when it asks, may read earlier than Redis's did for the mark.
  const dropped =
    job.data.refused || (outcome && outcomeAt !== undefined && outcomeAt <= (job.processedOn ?? 0));
  return {
    id: String(job.id),
    name: job.name,
    state,
    progress: job.progress,
    ...(state === 'completed' ? { result: job.returnvalue as unknown } : {}),
    // A delayed job with a reason is waiting to retry: the last error helps whoever watches.
    // A cancelled one says why in plain words, never BullMQ's reason (a failed child's key).
    ...(state === 'cancelled'
      ? { error: job.data.reason ?? CANCELLED }
      : job.failedReason
        ? { error: job.failedReason }
        : {}),
    ...(state === 'expired' && !job.failedReason
      ? { error: `not started by ${iso(expiresAt) ?? ''}` }
      : {}),
    attempts: dropped ? job.attemptsStarted - 1 : job.attemptsStarted,
    createdAt: new Date(job.timestamp).toISOString(),
    ...(job.processedOn && !dropped ? { startedAt: iso(job.processedOn) } : {}),
    ...(finishedOn ? { finishedAt: iso(finishedOn) } : {}),
  };
}
