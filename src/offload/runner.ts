import { Queue, WaitingError, Worker, type Job, type MinimalJob } from 'bullmq';
import type { Cluster, Redis } from 'ioredis';
import type { Logger } from './logger.js';
import { isConnectionError } from './connection-error.js';
import { listenForCancels } from './cancel.js';
import { backoffDelay, DEFAULT_RETRY } from './define.js';
import { JobCancelledError } from './errors.js';
import type { JobRun } from './execute.js';
import { processJob, WorkerShutdownError, type Pickup } from './pickup.js';
import type { JobData } from './types.js';
import { RETENTION, type Retention } from './job-options.js';
import { createQueueOffloader } from './queue.js';
import type { Registry } from './registry.js';
import { reconcileSchedules } from './schedules.js';
import { traced, type JobTracing } from './tracing.js';

export interface RunnerOptions<Deps> {
  registry: Registry;
  /** Which queues to consume: '*' for every queue a job names (Celery's `-Q`). */
  queues: '*' | readonly string[];
  /** A worker connection (`maxRetriesPerRequest: null`: it waits and reconnects); BullMQ duplicates it. */
  connection: Redis | Cluster;
  prefix: string;
  /** Jobs run at once, per queue: `default`, or the queue's own number. */
  concurrency: { default: number; queues?: Readonly<Record<string, number>> };
  /** Queue-wide rate limits (every worker of the queue shares them, through Redis). */
  rateLimits?: Readonly<Record<string, { max: number; durationMs: number }>>;
  /** How long finished jobs are kept (follow-ups enqueued by jobs use it too). */
  retention?: Retention;
  /** A job whose lock is not renewed for this long is taken to have died with its worker. */
  lockMs: number;
  stalledIntervalMs: number;
  deps: Deps;
  log: Logger;
  /** Traces: a span per run, in the trace of whoever enqueued the job (see tracing.ts). */
  tracing?: JobTracing | undefined;
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

/** Starts one BullMQ worker per queue; each runs the registry's jobs of that queue. */
export function startRunner<Deps>(options: RunnerOptions<Deps>): Runner {
  const { registry, log } = options;
  const queues = consumedQueues(options);

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
    retention: options.retention ?? RETENTION,
    tracing: options.tracing,
  });
  const limiters = createLimiters(options);
  const pickup: Pickup<Deps> = {
    registry,
    log,
    deps: options.deps,
    enqueue: followUps.enqueue.bind(followUps),
    running: new Map<string, JobRun>(),
    limiterOf: limiters.of,
    recentlyCancelled: (id) => cancels.recent(id),
  };
  const { running } = pickup;
  // Set when close() begins. BullMQ may still hand over a job whose fetch was under way as the
  // worker began closing (a job that became ready that very moment); it goes back, unstarted.
  let stopping = false;
  async function process(job: Job<JobData>, token?: string) {
    if (stopping) {
      await job.moveToWait(token);
      log.info({ jobId: job.id, job: job.name }, 'job fetched as the worker stopped: handed back');
      throw new WaitingError();
    }
    return processJob(pickup, job, token);
  }

  const { tracing } = options;
  const processor = tracing ? traced(tracing, process) : process;
  const workers = new Map<string, Worker<JobData>>();
  for (const name of queues) workers.set(name, startWorker(options, name, processor));
  log.info(
    { queues, concurrency: options.concurrency, rateLimits: options.rateLimits },
    'consuming queues',
  );
  const cancels = listenForCancels({
    connection: options.connection,
    prefix: options.prefix,
    abort(id) {
      running.get(id)?.abort(new JobCancelledError());
      return running.has(id);
    },
    log,
  });

  // The worker connection waits for Redis, so this completes once Redis is there.
  const schedules = reconcileSchedules({ ...options, queues }).catch((error: unknown) => {
    log.error({ err: error }, 'could not set the schedules');
  });

  return {
    queues,
    schedules,
    async close(deadline) {
      stopping = true;
      const closing = Promise.all([
        ...[...workers.values()].map((worker) => worker.close()),
        schedules,
      ]);
      const timer = setTimeout(
        () => {
          for (const run of running.values()) run.abort(new WorkerShutdownError());
        },
        Math.max(0, deadline - Date.now()),
      );
      try {
        await closing;
      } finally {
        clearTimeout(timer);
      }
      await Promise.all([followUps.close(), cancels.close(), limiters.close()]);
    },
  };
}

/** The queues to consume; a queue named in the options that no job uses is an error. */
function consumedQueues<Deps>(options: RunnerOptions<Deps>): readonly string[] {
  const { registry } = options;
  const queues = options.queues === '*' ? registry.queues : options.queues;
  const unknown = queues.filter((name) => !registry.queues.includes(name));
  if (unknown.length > 0) {
    throw new Error(
      `WORKER_QUEUES names queues no job uses: ${unknown.join(', ')} (known: ${registry.queues.join(', ')})`,
    );
  }
  for (const [setting, named] of Object.entries({
    QUEUE_CONCURRENCY: options.concurrency.queues ?? {},
    QUEUE_RATE_LIMIT: options.rateLimits ?? {},
  })) {
    const strangers = Object.keys(named).filter((name) => !registry.queues.includes(name));
    if (strangers.length > 0) {
      throw new Error(`${setting} names queues no job uses: ${strangers.join(', ')}`);
    }
  }
  return queues;
}

/** For RetryLaterError's queue scope: made on first use, most queues never need one. */
function createLimiters<Deps>({ connection, prefix, log }: RunnerOptions<Deps>) {
  const limiters = new Map<string, Queue>();
  return {
    of: (name: string): Queue => {
      let queue = limiters.get(name);
      if (!queue) {
        queue = new Queue(name, { connection, prefix });
        queue.on('error', (error) => {
          if (!isConnectionError(error)) log.warn({ err: error, queue: name }, 'queue error');
        });
        limiters.set(name, queue);
      }
      return queue;
    },
    close: () => Promise.all([...limiters.values()].map((queue) => queue.close())),
  };
}

/** One queue's BullMQ worker, running `processor` on each job it picks up. */
function startWorker<Deps>(
  options: RunnerOptions<Deps>,
  name: string,
  processor: (job: Job<JobData>, token?: string) => Promise<unknown>,
): Worker<JobData> {
  const { registry, log, tracing } = options;
  const limiter = options.rateLimits?.[name];
  const worker = new Worker<JobData>(name, processor, {
    connection: options.connection,
    ...(tracing && { telemetry: tracing.telemetry }),
    prefix: options.prefix,
    concurrency: options.concurrency.queues?.[name] ?? options.concurrency.default,
    lockDuration: options.lockMs,
    stalledInterval: options.stalledIntervalMs,
    // Every worker gets a limiter: BullMQ reads a queue's rate-limit key only in workers
    // that have one, and a queue-scope RetryLaterError sets that key to pause them all.
    limiter: limiter
      ? { max: limiter.max, duration: limiter.durationMs }
      : { max: Number.MAX_SAFE_INTEGER, duration: 1_000 },
    settings: {
      backoffStrategy: (attemptsMade: number, _type?: string, _error?: Error, job?: MinimalJob) =>
        backoffDelay((job && registry.get(job.name)?.retry) ?? DEFAULT_RETRY, attemptsMade),
    },
  });
  worker.on('error', (error) => {
    if (!isConnectionError(error)) log.warn({ err: error, queue: name }, 'worker error');
  });
  // Once per job that is out of attempts (BullMQ's event fires for every failed attempt):
  // the dead-letter line an alert can follow (list and replay them: see dead-letters.ts).
  worker.on('failed', (job, error) => {
    if (job?.finishedOn && !job.data.outcome) {
      log.error(
        {
          jobId: job.id,
          job: job.name,
          reqId: job.data.requestId,
          attempts: job.attemptsMade,
          err: error,
        },
        'job failed for good: dead-lettered',
      );
    }
  });
  return worker;
}
