import type { Logger } from '../logger.js';
import { parseInput, type AnyJob, type JobContext } from './define.js';
import { CANCEL_REASON, JobCancelledError, JobTimeoutError } from './errors.js';

export interface RunOptions<Deps> {
  jobId: string;
  attempt: number;
  log: Logger;
  deps: Deps;
  progress: JobContext['progress'];
  /** Aborts the run from outside (cancel: reason CANCEL_REASON; shutdown). */
  signal?: AbortSignal | undefined;
  /** For jobs that enqueue follow-ups; without it, `ctx.enqueue` throws. */
  enqueue?: JobContext['enqueue'] | undefined;
  /** The results of the jobs this one waited for; without it, none. */
  results?: JobContext['results'] | undefined;
}

const cannotEnqueue: JobContext['enqueue'] = () =>
  Promise.reject(new Error('this run was given no offloader to enqueue with'));

/** Reasons to stop that leave the handler time to clean up; anything else (shutdown) is now. */
const graceful = (reason: unknown) =>
  reason instanceof JobTimeoutError || reason instanceof JobCancelledError;

/**
 * One run of a job, the same in every mode: re-validate the input (jobs may have waited in
 * Redis across a deploy), then run it under its time limit. When the limit passes (or the job
 * is cancelled), its signal fires and the handler gets `timeoutGraceMs` to stop; then the run
 * fails with that reason either way, and whatever the handler returns later is discarded.
 */
export async function runJob<Deps>(
  job: AnyJob,
  rawInput: unknown,
  options: RunOptions<Deps>,
): Promise<unknown> {
  const input = parseInput(job, rawInput);

  const controller = new AbortController();
  const { signal } = controller;
  const timer = setTimeout(() => {
    controller.abort(new JobTimeoutError(job.timeoutMs));
  }, job.timeoutMs);
  const onOuterAbort = () => {
    const reason: unknown = options.signal?.reason;
    controller.abort(reason === CANCEL_REASON ? new JobCancelledError() : reason);
  };
  options.signal?.addEventListener('abort', onOuterAbort, { once: true });
  if (options.signal?.aborted) onOuterAbort();

  let grace: NodeJS.Timeout | undefined;
  const stopped = new Promise<never>((_, reject) => {
    const fail = () => {
      const end = () => {
        reject(signal.reason as Error);
      };
      if (graceful(signal.reason)) grace = setTimeout(end, job.timeoutGraceMs);
      else end();
    };
    if (signal.aborted) fail();
    else signal.addEventListener('abort', fail, { once: true });
  });
  const ctx: JobContext<Deps> = {
    ...options,
    signal,
    enqueue: options.enqueue ?? cannotEnqueue,
    results: options.results ?? (() => Promise.resolve([])),
  };
  // Settled after the signal fired: the handler stopped (or finished) too late to count.
  const late = () => {
    if (signal.aborted) throw signal.reason as Error;
  };
  try {
    return await Promise.race([
      job.run(input, ctx).then(
        (result) => {
          late();
          return result;
        },
        (error: unknown) => {
          late();
          throw error;
        },
      ),
      stopped,
    ]);
  } finally {
    clearTimeout(timer);
    clearTimeout(grace);
    options.signal?.removeEventListener('abort', onOuterAbort);
  }
}
