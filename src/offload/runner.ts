import { UnrecoverableError, WaitingError, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from '../logger.js';
import { isConnectionError } from '../redis.js';
import { PermanentError } from './errors.js';
import { runJob } from './execute.js';
import type { JobData } from './offloader.js';
import { createQueueOffloader } from './queue.js';
import type { Registry } from './registry.js';
import { reconcileSchedules } from './schedules.js';

export interface RunnerOptions<Deps> {
  registry: Registry;
  /** Which queues to consume: '*' for every queue a job names (Celery's `-Q`). */
  queues: '*' | readonly string[];
  /** A worker connection (waits and reconnects, see src/redis.ts); BullMQ duplicates it. */
  connection: Redis;
  prefix: string;
  /** Jobs run at once, per queue. */
  concurrency: number;
  /** A job whose lock is not renewed for this long is taken to have died with its worker. */
  lockMs: number;
  stalledIntervalMs: number;
  deps: Deps;
  log: Logger;
}

export interface Runner {
  readonly queues: readonly string[];
  /** Settles once the consumed queues' schedules match the job definitions (see schedules.ts). */
  readonly schedules: Promise<void>;
  /**
   * Stops fetching and lets active jobs finish until `deadline` (epoch ms); then aborts what
   * is left and puts it back in its queue, so another worker runs it at once.
   */
  close(deadline: number): Promise<void>;
}

/** Why a job's signal fired when the worker is stopping. */
const SHUTDOWN = 'worker shutting down';

/** Starts one BullMQ worker per queue; each runs the registry's jobs of that queue. */
export function startRunner<Deps>(options: RunnerOptions<Deps>): Runner {
  const { registry, log } = options;
  const queues = options.queues === '*' ? registry.queues : options.queues;
  const unknown = queues.filter((name) => !registry.queues.includes(name));
  if (unknown.length > 0) {
    throw new Error(
      `WORKER_QUEUES names queues no job uses: ${unknown.join(', ')} (known: ${registry.queues.join(', ')})`,
    );
  }

  // Jobs enqueue follow-ups through the worker's connection. Like any enqueue it fails at once
  // while Redis is unreachable, and the job is retried later.
  const followUps = createQueueOffloader({
    registry,
    connection: options.connection,
    eventsConnection: () => {
      throw new Error('jobs do not watch other jobs');
    },
    prefix: options.prefix,
    log,
  });
  const enqueue = followUps.enqueue.bind(followUps);

  async function process(job: Job<JobData>, token?: string, signal?: AbortSignal) {
    const definition = registry.get(job.name);
    if (!definition) throw new UnrecoverableError(`no job named "${job.name}" in this worker`);
    const jobLog = log.child({
      jobId: job.id,
      job: job.name,
      reqId: job.data.requestId,
      attempt: job.attemptsStarted,
    });
    const started = Date.now();
    jobLog.info({ waitedMs: started - job.timestamp }, 'job started');
    try {
      const result = await runJob(definition, job.data.input, {
        jobId: String(job.id),
        attempt: job.attemptsStarted,
        log: jobLog,
        deps: options.deps,
        signal,
        enqueue,
        progress: (value) => job.updateProgress(value),
      });
      jobLog.info({ durationMs: Date.now() - started }, 'job completed');
      return result;
    } catch (error) {
      if (signal?.reason === SHUTDOWN) {
        // Not a failure: hand the job back without spending an attempt.
        await job.moveToWait(token);
        jobLog.warn('job interrupted by shutdown, put back in its queue');
        throw new WaitingError();
      }
      const permanent = error instanceof PermanentError;
      jobLog.warn({ err: error, durationMs: Date.now() - started, permanent }, 'job failed');
      if (permanent) throw new UnrecoverableError(error.message);
      throw error;
    }
  }

  const workers = queues.map((name) => {
    const worker = new Worker<JobData>(name, process, {
      connection: options.connection,
      prefix: options.prefix,
      concurrency: options.concurrency,
      lockDuration: options.lockMs,
      stalledInterval: options.stalledIntervalMs,
    });
    worker.on('error', (error) => {
      if (!isConnectionError(error)) log.warn({ err: error, queue: name }, 'worker error');
    });
    return worker;
  });
  log.info({ queues, concurrency: options.concurrency }, 'consuming queues');

  // The worker connection waits for Redis, so this completes once Redis is there.
  const schedules = reconcileSchedules({ ...options, queues }).catch((error: unknown) => {
    log.error({ err: error }, 'could not set the schedules');
  });

  return {
    queues,
    schedules,
    async close(deadline) {
      const closing = Promise.all([...workers.map((worker) => worker.close()), schedules]);
      const timer = setTimeout(
        () => {
          for (const worker of workers) worker.cancelAllJobs(SHUTDOWN);
        },
        Math.max(0, deadline - Date.now()),
      );
      try {
        await closing;
      } finally {
        clearTimeout(timer);
      }
      await followUps.close();
    },
  };
}
