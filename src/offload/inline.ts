import type { Logger } from '../logger.js';
import { parseInput, type AnyJob } from './define.js';
import { runJob } from './execute.js';
import { childId, jobIdFor } from './ids.js';
import type { EnqueueOptions, Offloader } from './offloader.js';
import { sumProgress, type JobStatus } from './status.js';
import { timing } from './timing.js';

/** How many finished jobs inline mode remembers for `status()`; the oldest are forgotten. */
const REMEMBERED = 1_000;

/**
 * Celery's `task_always_eager`: `enqueue` runs the job inside the call, once, with no Redis.
 * For tests and debugging; the HTTP contract (202 + status URL) is the same as in queue mode.
 */
export function createInlineOffloader(options: { deps: unknown; log: Logger }): Offloader {
  const finished = new Map<string, JobStatus>();
  const running = new Map<string, Promise<JobStatus>>();
  // Jobs that enqueue follow-ups run them inline too, inside their own run.
  const enqueue: Offloader['enqueue'] = (job, input, enqueueOptions) =>
    offloader.enqueue(job, input, enqueueOptions);

  function remember(status: JobStatus) {
    finished.set(status.id, status);
    if (finished.size > REMEMBERED) finished.delete(finished.keys().next().value as string);
  }

  function failed(job: AnyJob, id: string, error: string): JobStatus {
    const now = new Date().toISOString();
    return {
      id,
      name: job.name,
      state: 'failed',
      progress: 0,
      error,
      attempts: 0,
      createdAt: now,
      finishedAt: now,
    };
  }

  async function run(
    job: AnyJob,
    input: unknown,
    id: string,
    requestId?: string,
    results: unknown[] = [],
  ): Promise<JobStatus> {
    const status: JobStatus = {
      id,
      name: job.name,
      state: 'active',
      progress: 0,
      attempts: 1,
      createdAt: new Date().toISOString(),
      startedAt: new Date().toISOString(),
    };
    const log = options.log.child({ jobId: id, job: job.name, reqId: requestId });
    try {
      status.result = await runJob(job, input, {
        jobId: id,
        attempt: 1,
        log,
        deps: options.deps,
        enqueue,
        results: () => Promise.resolve(results),
        progress: (value) => {
          status.progress = value;
          return Promise.resolve();
        },
      });
      status.state = 'completed';
    } catch (error) {
      status.state = 'failed';
      status.error = error instanceof Error ? error.message : String(error);
      log.warn({ err: error }, 'job failed');
    }
    status.finishedAt = new Date().toISOString();
    return status;
  }

  /** A workflow runs its children first, one by one; the first failure fails the parent. */
  async function runWorkflow(
    job: AnyJob,
    parsed: unknown,
    kids: { job: AnyJob; input: unknown }[],
    id: string,
    { requestId, progressTotal }: EnqueueOptions,
  ): Promise<JobStatus> {
    let failedChild: JobStatus | undefined;
    const childStatuses: JobStatus[] = [];
    for (const [index, kid] of kids.entries()) {
      const done = await run(kid.job, kid.input, childId(id, index), requestId);
      childStatuses.push(done);
      if (done.state === 'failed') {
        failedChild = done;
        break;
      }
    }
    const status = failedChild
      ? failed(job, id, `${failedChild.name} ${failedChild.id} failed: ${failedChild.error ?? ''}`)
      : await run(
          job,
          parsed,
          id,
          requestId,
          childStatuses.map((s) => s.result),
        );
    const sum = sumProgress(childStatuses.map((s) => s.progress));
    if (sum.total > 0) status.progress = { done: sum.done, total: progressTotal ?? sum.total };
    return status;
  }

  const offloader: Offloader = {
    mode: 'inline',
    async enqueue(job, input, enqueueOptions = {}) {
      const { key, children = [] } = enqueueOptions;
      timing(enqueueOptions); // refuses what queue mode refuses; then runs now, whatever the delay
      const parsed = parseInput(job, input);
      const kids = children.map((c) => ({ job: c.job, input: parseInput(c.job, c.input) }));
      const id = jobIdFor(job.name, key);
      // A keyed duplicate gets the first call's job, finished or still running.
      const earlier = finished.get(id) ?? (await running.get(id));
      if (earlier) return { id, name: job.name, state: earlier.state, replayed: true };
      const workflow = runWorkflow(job, parsed, kids, id, enqueueOptions);
      running.set(id, workflow);
      try {
        const status = await workflow;
        remember(status);
        return { id, name: job.name, state: status.state };
      } finally {
        running.delete(id);
      }
    },

    status: (id) => Promise.resolve(finished.get(id) ?? null),
    // Every inline job is final before its id is known: there is never anything to cancel.
    cancel: (id) => Promise.resolve(finished.get(id) ?? null),
    // Inline jobs are final before anyone can watch them: nothing will ever change.
    watch: () => Promise.resolve(() => undefined),
    ping: () => Promise.resolve(),
    close: () => Promise.resolve(),
  };
  return offloader;
}
