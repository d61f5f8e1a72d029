// The no-op job of the end-to-end, pickup-latency and soak suites, and the wiring both sides
// share: the bench process pre-fills queues with it, bench/noop-worker.ts runs it. Bench-only:
// jobs/index.ts does not list it, so the app never sees it.
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { JobsOptions } from 'bullmq';
import { z } from 'zod';
import { defineJob, jobOptions, type JobData } from '../src/offload/index.js';

/** A wall clock with sub-millisecond resolution, comparable across processes on one machine. */
export const wallClock = () => performance.timeOrigin + performance.now();

/** What the worker calls for every job it runs: counts it and, for pickup, takes its latency. */
export const hooks: { onRun: (input: NoopInput) => void } = { onRun: () => undefined };

const noopInput = z.strictObject({
  /** When the job was enqueued (wallClock), for the pickup-latency suite. */
  t: z.number().optional(),
});
export type NoopInput = z.output<typeof noopInput>;

/** Does nothing: what remains is the cost of getting a job to a handler and back. */
export const noop = defineJob({
  name: 'noop',
  queue: 'noop',
  input: noopInput,
  retry: { attempts: 3, backoff: 'exponential', delayMs: 1_000, jitter: 0.2 },
  timeoutMs: 30_000,
  run(input) {
    hooks.onRun(input);
    return Promise.resolve(null);
  },
});

/**
 * A job as `offloader.enqueue(noop, input)` stores it: the same data and options (its payload
 * is `{input}`; a missing requestId is not serialized), for pre-filling with addBulk.
 */
export function noopJob(input: NoopInput = {}): {
  name: string;
  data: JobData;
  opts: JobsOptions;
} {
  return { name: noop.name, data: { input }, opts: { ...jobOptions(noop), jobId: randomUUID() } };
}

export type WorkerMode = 'bare' | 'bare-logged' | 'offload' | 'bee';

/** Parent → worker. */
export type ToWorker =
  { type: 'expect'; count: number } | { type: 'latencies' } | { type: 'counted' };
/** Worker → parent. */
export type FromWorker =
  | { type: 'ready' }
  | { type: 'drained'; at: number }
  | { type: 'latencies'; values: number[] }
  | { type: 'counted'; count: number };
