import {
  DelayedError,
  Queue,
  UnrecoverableError,
  WaitingError,
  Worker,
  type Job,
  type MinimalJob,
} from 'bullmq';
import type { Cluster, Redis } from 'ioredis';
import type { Logger } from './logger.js';
import { isConnectionError } from './connection-error.js';
import { listenForCancels } from './cancel.js';
import { backoffDelay, DEFAULT_RETRY } from './define.js';
import { CANCEL_REASON, JobCancelledError, PermanentError, RetryLaterError } from './errors.js';
import { startJob, type JobRun } from './execute.js';
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
  /** A worker connection (waits and reconnects, see src/redis.ts); BullMQ duplicates it. */
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

/** Why a job's signal fired when the worker is stopping. */
class WorkerShutdownError extends Error {
  override name = 'WorkerShutdownError';
  constructor() {
    super('worker shutting down');
  }
}
/**
 * Retry-laters spend no attempt, so a job that is turned away forever would never end: after
 * this many pickups beyond its attempts, a retry-later counts as a failed attempt.
 */
const MAX_DEFERRALS = 25;

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
  for (const [setting, named] of Object.entries({
    QUEUE_CONCURRENCY: options.concurrency.queues ?? {},
    QUEUE_RATE_LIMIT: options.rateLimits ?? {},
  })) {
    const strangers = Object.keys(named).filter((name) => !registry.queues.includes(name));
    if (strangers.length > 0) {
      throw new Error(`${setting} names queues no job uses: ${strangers.join(', ')}`);
    }
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
    retention: options.retention ?? RETENTION,
    tracing: options.tracing,
  });
  const enqueue = followUps.enqueue.bind(followUps);
  const workers = new Map<string, Worker<JobData>>();
  // For RetryLaterError's queue scope: made on first use, most queues never need one.
  const limiters = new Map<string, Queue>();
  const limiterOf = (name: string) => {
    let queue = limiters.get(name);
    if (!queue) {
      queue = new Queue(name, { connection: options.connection, prefix: options.prefix });
      queue.on('error', (error) => {
        if (!isConnectionError(error)) log.warn({ err: error, queue: name }, 'queue error');
      });
      limiters.set(name, queue);
    }
    return queue;
  };

  /** Ends a job without running it (again): it reads `outcome` from now on. */
  async function drop(job: Job<JobData>, outcome: 'cancelled' | 'expired', at: number) {
    if (job.data.outcome !== outcome) await job.updateData({ ...job.data, outcome, outcomeAt: at });
    // A retry is a start too (as with Celery's `expires`): past the expiry, none happens.
    const start = job.attemptsMade > 0 ? 'retried' : 'started';
    throw new UnrecoverableError(
      outcome === 'expired'
        ? `expired: not ${start} by ${new Date(at).toISOString()}`
        : CANCEL_REASON,
    );
  }

  // The runs under way in this process, by job id: cancels and the shutdown stop them. (Not
  // BullMQ's own signal: it would make an AbortController for every job, see execute.ts.)
  const running = new Map<string, JobRun>();

  async function process(job: Job<JobData>, token?: string) {
    const definition = registry.get(job.name);
    if (!definition) throw new UnrecoverableError(`no job named "${job.name}" in this worker`);
    const jobLog = log.child({
      jobId: job.id,
      job: job.name,
      reqId: job.data.requestId,
      attempt: job.attemptsStarted,
    });
    const started = Date.now();
    const { expiresAt, outcome } = job.data;
    if (outcome === 'cancelled' || cancels.recent(String(job.id))) {
      jobLog.info(
        job.data.refused
          ? 'job whose enqueue was refused (answered 503): dropped'
          : 'job cancelled before it started: dropped',
      );
      await drop(job, 'cancelled', job.data.outcomeAt ?? started);
    }
    if (expiresAt !== undefined && started > expiresAt) {
      jobLog.warn({ expiresAt: new Date(expiresAt).toISOString() }, 'job expired: dropped');
      await drop(job, 'expired', expiresAt);
    }
    jobLog.info({ waitedMs: started - job.timestamp }, 'job started');
    const id = String(job.id);
    const run = startJob(definition, job.data.input, {
      jobId: id,
      attempt: job.attemptsStarted,
      log: jobLog,
      deps: options.deps,
      enqueue,
      results: async () => inOrder(await job.getChildrenValues()),
      progress: (value) => job.updateProgress(value),
    });
    running.set(id, run);
    try {
      const result = await run.result;
      jobLog.info({ durationMs: Date.now() - started }, 'job completed');
      return result;
    } catch (error) {
      if (run.reason instanceof WorkerShutdownError) {
        // Not a failure: hand the job back without spending an attempt.
        await job.moveToWait(token);
        jobLog.warn('job interrupted by shutdown, put back in its queue');
        throw new WaitingError();
      }
      if (run.reason instanceof JobCancelledError) {
        jobLog.info({ durationMs: Date.now() - started }, 'job cancelled while running');
        await drop(job, 'cancelled', job.data.outcomeAt ?? Date.now());
      }
      const deferrals = job.attemptsStarted - job.attemptsMade - 1;
      if (error instanceof RetryLaterError && deferrals < MAX_DEFERRALS) {
        jobLog.info(
          { delayMs: error.delayMs, scope: error.scope },
          `retry later: ${error.message}`,
        );
        if (error.scope === 'queue') {
          // The whole queue waits, in every worker; this job goes back to the front.
          await limiterOf(job.queueName).rateLimit(error.delayMs);
          throw Worker.RateLimitError();
        }
        await job.moveToDelayed(Date.now() + error.delayMs, token);
        throw new DelayedError();
      }
      const permanent = error instanceof PermanentError;
      jobLog.warn({ err: error, durationMs: Date.now() - started, permanent }, 'job failed');
      if (permanent) throw new UnrecoverableError(error.message);
      throw error;
    } finally {
      running.delete(id);
    }
  }

  const { tracing } = options;
  const processor = tracing ? traced(tracing, process) : process;
  for (const name of queues) {
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
    workers.set(name, worker);
  }
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
      await Promise.all([
        followUps.close(),
        cancels.close(),
        ...[...limiters.values()].map((queue) => queue.close()),
      ]);
    },
  };
}

/** Children's results by their ids' step numbers (`<parent>.<n>`, see ids.ts), not hash order. */
function inOrder(values: Record<string, unknown>): unknown[] {
  const step = (key: string) => Number(/\.(\d+)$/.exec(key)?.[1] ?? 0);
  return Object.keys(values)
    .sort((a, b) => step(a) - step(b))
    .map((key) => values[key]);
}
