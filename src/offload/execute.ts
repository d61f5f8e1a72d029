import type { Logger } from '../logger.js';
import { parseInput, type AnyJob, type JobContext } from './define.js';
import { JobTimeoutError } from './errors.js';

export interface RunOptions<Deps> {
  jobId: string;
  attempt: number;
  log: Logger;
  deps: Deps;
  progress: JobContext['progress'];
  /** Aborts the run from outside (cancel, shutdown). */
  signal?: AbortSignal | undefined;
  /** For jobs that enqueue follow-ups; without it, `ctx.enqueue` throws. */
  enqueue?: JobContext['enqueue'] | undefined;
}

const cannotEnqueue: JobContext['enqueue'] = () =>
  Promise.reject(new Error('this run was given no offloader to enqueue with'));

/**
 * One run of a job, the same in every mode: re-validate the input (jobs may have waited in
 * Redis across a deploy), then run it under its time limit. When the limit passes, the job's
 * signal fires and the run fails at once; whatever the handler returns later is discarded.
 */
export async function runJob<Deps>(
  job: AnyJob,
  rawInput: unknown,
  options: RunOptions<Deps>,
): Promise<unknown> {
  const input = parseInput(job, rawInput);

  const controller = new AbortController();
  const timer = setTimeout(() => {
    controller.abort(new JobTimeoutError(job.timeoutMs));
  }, job.timeoutMs);
  const onOuterAbort = () => {
    controller.abort(options.signal?.reason);
  };
  options.signal?.addEventListener('abort', onOuterAbort, { once: true });
  if (options.signal?.aborted) onOuterAbort();

  const aborted = new Promise<never>((_, reject) => {
    const fail = () => {
      reject(controller.signal.reason as Error);
    };
    if (controller.signal.aborted) fail();
    else controller.signal.addEventListener('abort', fail, { once: true });
  });
  const ctx: JobContext<Deps> = {
    ...options,
    signal: controller.signal,
    enqueue: options.enqueue ?? cannotEnqueue,
  };
  try {
    return await Promise.race([job.run(input, ctx), aborted]);
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener('abort', onOuterAbort);
  }
}
