import type { Logger } from './logger.js';
import { parseInput } from './define.js';
import type { AnyJob, JobContext } from './types.js';
import { CANCEL_REASON, JobCancelledError, JobTimeoutError } from './errors.js';

export interface RunOptions<Deps> {
  jobId: string;
  attempt: number;
  log: Logger;
  deps: Deps;
  progress: JobContext['progress'];
  /** Aborts the run from outside (reason CANCEL_REASON: a cancel); `startJob` offers `abort`. */
  signal?: AbortSignal | undefined;
  /** For jobs that enqueue follow-ups; without it, `ctx.enqueue` throws. */
  enqueue?: JobContext['enqueue'] | undefined;
  /** The results of the jobs this one waited for; without it, none. */
  results?: JobContext['results'] | undefined;
}

/** A run under way: its outcome, and a way to stop it. */
export interface JobRun {
  readonly result: Promise<unknown>;
  /** Stops the run with `reason` (first call wins): see `startJob`. */
  abort(reason: Error): void;
  /** Why it was stopped, if it was. */
  readonly reason: Error | undefined;
}

const cannotEnqueue: JobContext['enqueue'] = () =>
  Promise.reject(new Error('this run was given no offloader to enqueue with'));
const noResults = () => Promise.resolve([]);

/** Reasons to stop that leave the handler time to clean up; anything else (shutdown) is now. */
const graceful = (reason: unknown) =>
  reason instanceof JobTimeoutError || reason instanceof JobCancelledError;

/**
 * One run of a job, the same in every mode: re-validate the input (jobs may have waited in
 * Redis across a deploy), then run it under its time limit. When the limit passes (or the run
 * is aborted), its signal fires and the handler gets `timeoutGraceMs` to stop (none for other
 * reasons, such as a shutdown); then the run fails with that reason either way, and whatever
 * the handler returns later is discarded.
 */
export function startJob<Deps>(job: AnyJob, rawInput: unknown, options: RunOptions<Deps>): JobRun {
  return new Run(job, rawInput, options);
}

/**
 * Classes rather than closures and object literals with getters: this runs for every job, and
 * those cost a no-op job's run several times over (bench/e2e).
 */
class Run<Deps> implements JobRun {
  readonly result: Promise<unknown>;
  reason: Error | undefined;
  /** Made when the handler first reads `ctx.signal`: most short jobs never do. */
  #controller: AbortController | undefined;
  #stop: (reason: Error) => void = () => undefined;
  #grace: NodeJS.Timeout | undefined;
  readonly #timer: NodeJS.Timeout;
  #ended = false;

  constructor(
    readonly job: AnyJob,
    rawInput: unknown,
    options: RunOptions<Deps>,
  ) {
    this.#timer = setTimeout(() => {
      this.abort(new JobTimeoutError(job.timeoutMs));
    }, job.timeoutMs);
    this.result = this.#run(rawInput, new Context(this, options));
  }

  async #run(rawInput: unknown, ctx: JobContext<Deps>): Promise<unknown> {
    const stopped = new Promise<never>((_, reject) => {
      this.#stop = reject;
    });
    try {
      const input = parseInput(this.job, rawInput);
      const value = await Promise.race([this.job.run(input, ctx), stopped]);
      this.#late();
      return value;
    } catch (error) {
      this.#late();
      throw error;
    } finally {
      this.#ended = true;
      clearTimeout(this.#timer);
      clearTimeout(this.#grace);
    }
  }

  /** Settled after the run was stopped: the handler stopped (or finished) too late to count. */
  #late() {
    if (this.reason) throw this.reason;
  }

  abort(reason: Error): void {
    if (this.reason || this.#ended) return; // too late: it already has its outcome
    this.reason = reason;
    this.#controller?.abort(reason);
    if (graceful(reason)) {
      this.#grace = setTimeout(() => {
        this.#stop(reason);
      }, this.job.timeoutGraceMs);
    } else this.#stop(reason);
  }

  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController();
      if (this.reason) this.#controller.abort(this.reason);
    }
    return this.#controller.signal;
  }
}

/** What the handler gets: its signal is the run's, made on first read. */
class Context<Deps> implements JobContext<Deps> {
  readonly #run: Run<Deps>;
  readonly jobId: string;
  readonly attempt: number;
  readonly log: Logger;
  readonly deps: Deps;
  readonly progress: JobContext['progress'];
  readonly enqueue: JobContext['enqueue'];
  readonly results: JobContext['results'];

  constructor(run: Run<Deps>, options: RunOptions<Deps>) {
    this.#run = run;
    this.jobId = options.jobId;
    this.attempt = options.attempt;
    this.log = options.log;
    this.deps = options.deps;
    this.progress = options.progress;
    this.enqueue = options.enqueue ?? cannotEnqueue;
    this.results = options.results ?? noResults;
  }

  get signal(): AbortSignal {
    return this.#run.signal;
  }
}

/** `startJob`, awaited; an outer `signal` aborts it (CANCEL_REASON as a JobCancelledError). */
export async function runJob<Deps>(
  job: AnyJob,
  rawInput: unknown,
  options: RunOptions<Deps>,
): Promise<unknown> {
  const run = startJob(job, rawInput, options);
  const outer = options.signal;
  if (!outer) return run.result;
  const onAbort = () => {
    const why: unknown = outer.reason;
    run.abort(
      why === CANCEL_REASON
        ? new JobCancelledError()
        : why instanceof Error
          ? why
          : new Error(String(why)),
    );
  };
  if (outer.aborted) onAbort();
  else outer.addEventListener('abort', onAbort, { once: true });
  try {
    return await run.result;
  } finally {
    outer.removeEventListener('abort', onAbort);
  }
}
