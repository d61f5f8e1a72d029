import type { Job } from 'bullmq';

/** The states a caller can see. BullMQ's `prioritized` and `waiting-children` read as waiting. */
export type JobState = 'waiting' | 'delayed' | 'active' | 'completed' | 'failed';

export const FINAL_STATES: ReadonlySet<JobState> = new Set(['completed', 'failed']);

/** What `GET /jobs/:id` shows. Never the job's input: it may hold personal data. */
export interface JobStatus {
  id: string;
  name: string;
  state: JobState;
  progress: unknown;
  result?: unknown;
  error?: string;
  /** Runs started so far, retries included. */
  attempts: number;
  createdAt: string;
  startedAt?: string;
  finishedAt?: string;
}

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

export function toStatus(job: Job, bullState: string): JobStatus {
  const state = toState(bullState);
  return {
    id: String(job.id),
    name: job.name,
    state,
    progress: job.progress,
    ...(state === 'completed' ? { result: job.returnvalue as unknown } : {}),
    // A delayed job with a reason is waiting to retry: the last error helps whoever watches.
    ...(job.failedReason ? { error: job.failedReason } : {}),
    attempts: job.attemptsStarted,
    createdAt: new Date(job.timestamp).toISOString(),
    ...(job.processedOn ? { startedAt: iso(job.processedOn) } : {}),
    ...(job.finishedOn ? { finishedAt: iso(job.finishedOn) } : {}),
  };
}
