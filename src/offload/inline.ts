import { randomUUID } from 'node:crypto';
import type { Logger } from '../logger.js';
import type { AnyJob } from './define.js';
import { InvalidJobInputError } from './errors.js';
import { runJob } from './execute.js';
import type { Offloader } from './offloader.js';
import type { JobStatus } from './status.js';

/** How many finished jobs inline mode remembers for `status()`; the oldest are forgotten. */
const REMEMBERED = 1_000;

/**
 * Celery's `task_always_eager`: `enqueue` runs the job inside the call, once, with no Redis.
 * For tests and debugging; the HTTP contract (202 + status URL) is the same as in queue mode.
 */
export function createInlineOffloader(options: { deps: unknown; log: Logger }): Offloader {
  const finished = new Map<string, JobStatus>();

  return {
    mode: 'inline',
    async enqueue(job, input, enqueueOptions = {}) {
      const parsed = job.input.safeParse(input);
      if (!parsed.success) throw new InvalidJobInputError(job.name, parsed.error);
      const id = randomUUID();
      const status: JobStatus = {
        id,
        name: job.name,
        state: 'active',
        progress: 0,
        attempts: 1,
        createdAt: new Date().toISOString(),
        startedAt: new Date().toISOString(),
      };
      const log = options.log.child({ jobId: id, job: job.name, reqId: enqueueOptions.requestId });
      try {
        status.result = await runJob(job as AnyJob, parsed.data, {
          jobId: id,
          attempt: 1,
          log,
          deps: options.deps,
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
      finished.set(id, status);
      if (finished.size > REMEMBERED) finished.delete(finished.keys().next().value as string);
      return { id, name: job.name, state: status.state };
    },
    status: (id) => Promise.resolve(finished.get(id) ?? null),
    // Inline jobs are final before anyone can watch them: nothing will ever change.
    watch: () => Promise.resolve(() => undefined),
    ping: () => Promise.resolve(),
    close: () => Promise.resolve(),
  };
}
