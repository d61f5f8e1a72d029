import type { z } from 'zod';
import type { JobDefinition } from './define.js';
import type { JobState, JobStatus } from './status.js';

export interface EnqueueOptions {
  /** Countdown: run no sooner than this many ms from now. */
  delayMs?: number;
  /** 1 (highest) .. 2_097_152; jobs without a priority go first. */
  priority?: number;
  /** The HTTP request that asked for the job, so one grep follows it into the worker. */
  requestId?: string;
}

/** What an enqueue answers: enough for a 202 and a status URL. */
export interface Accepted {
  id: string;
  name: string;
  state: JobState;
}

/** Something happened to a job: its status changed, or it reported progress. */
export type JobEventListener = (status: JobStatus) => void;

/** The app's one handle on background work, whatever the mode. */
export interface Offloader {
  readonly mode: 'queue' | 'embedded' | 'inline';
  enqueue<Schema extends z.ZodType>(
    job: JobDefinition<Schema>,
    input: z.input<Schema>,
    options?: EnqueueOptions,
  ): Promise<Accepted>;
  /** null for an unknown (or expired) id. */
  status(id: string): Promise<JobStatus | null>;
  /** Calls `listener` with the fresh status whenever the job changes; returns unsubscribe. */
  watch(id: string, listener: JobEventListener): Promise<() => void>;
  /** Resolves when the queue backend answers; rejects with the reason otherwise. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** The payload stored in Redis: the validated input and where it came from. */
export interface JobData {
  input: unknown;
  requestId?: string;
}
