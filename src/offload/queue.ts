import { randomUUID } from 'node:crypto';
import { Queue, QueueEvents, type JobsOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from '../logger.js';
import { isConnectionError } from '../redis.js';
import type { AnyJob } from './define.js';
import { InvalidJobInputError, QueueUnavailableError } from './errors.js';
import type { JobData, JobEventListener, Offloader } from './offloader.js';
import type { Registry } from './registry.js';
import { toStatus } from './status.js';

/** Finished jobs are kept this long (or this many per queue), then Redis forgets them. */
export const RETENTION = {
  completed: { age: 24 * 3600, count: 10_000 },
  failed: { age: 7 * 24 * 3600, count: 50_000 },
} as const;

const QUEUE_EVENTS = ['active', 'progress', 'completed', 'failed', 'delayed', 'waiting'] as const;

export interface QueueOffloaderOptions {
  registry: Registry;
  /** A fail-fast producer connection (see src/redis.ts). */
  connection: Redis;
  /** Makes the connections job events need (blocking reads); called lazily, once per queue. */
  eventsConnection: () => Redis;
  prefix: string;
  log: Logger;
  mode?: 'queue' | 'embedded';
}

/** BullMQ options for a job's runs, from its definition (the id is added per enqueue). */
export function jobOptions(job: AnyJob): JobsOptions {
  const { attempts, backoff, delayMs, jitter } = job.retry;
  return {
    attempts,
    backoff: { type: backoff, delay: delayMs, ...(jitter ? { jitter } : {}) },
    removeOnComplete: RETENTION.completed,
    removeOnFail: RETENTION.failed,
  };
}

/** The offloader that puts jobs on BullMQ queues in Redis, for worker processes to run. */
export function createQueueOffloader(options: QueueOffloaderOptions): Offloader {
  const { registry, connection, prefix, log } = options;
  const queues = new Map(
    registry.queues.map((name) => {
      const queue = new Queue<JobData>(name, { connection, prefix });
      queue.on('error', (error) => {
        if (!isConnectionError(error)) log.warn({ err: error, queue: name }, 'queue error');
      });
      return [name, queue] as const;
    }),
  );
  const queueOf = (job: AnyJob) => {
    const queue = queues.get(job.queue);
    if (!queue) throw new Error(`job ${job.name} is not in the registry`);
    return queue;
  };

  /**
   * Runs a Redis operation, failing fast: when not connected, BullMQ would wait for a
   * connection that may never come. Any Redis failure reads as "the queue is unavailable".
   */
  async function whenConnected<T>(operation: () => Promise<T>): Promise<T> {
    if (connection.status !== 'ready') throw new QueueUnavailableError();
    try {
      return await operation();
    } catch (error) {
      throw new QueueUnavailableError(error);
    }
  }

  // An id does not name its queue: ask every queue at once (one round trip of waiting, not N).
  const find = (id: string) =>
    whenConnected(async () => {
      const found = await Promise.all([...queues.values()].map((queue) => queue.getJob(id)));
      return found.find((job) => job !== undefined);
    });

  async function status(id: string) {
    const job = await find(id);
    return job ? toStatus(job, await job.getState()) : null;
  }

  // Job events arrive on one Redis stream per queue; one reader per queue serves every watcher.
  const watchers = new Map<string, Set<JobEventListener>>();
  const readers = new Map<string, QueueEvents>();
  const readerConnections: Redis[] = [];
  function reader(queueName: string) {
    let events = readers.get(queueName);
    if (!events) {
      const readerConnection = options.eventsConnection();
      readerConnections.push(readerConnection);
      events = new QueueEvents(queueName, { connection: readerConnection, prefix });
      events.on('error', (error) => {
        if (!isConnectionError(error))
          log.warn({ err: error, queue: queueName }, 'queue events error');
      });
      for (const name of QUEUE_EVENTS) {
        events.on(name, ({ jobId }: { jobId: string }) => {
          const listeners = watchers.get(jobId);
          if (!listeners) return;
          status(jobId).then(
            (current) => {
              if (current) for (const listener of listeners) listener(current);
            },
            (error: unknown) => {
              log.warn({ err: error, jobId }, 'could not read job status');
            },
          );
        });
      }
      readers.set(queueName, events);
    }
    return events;
  }

  return {
    mode: options.mode ?? 'queue',

    async enqueue(job, input, enqueueOptions = {}) {
      const parsed = job.input.safeParse(input);
      if (!parsed.success) throw new InvalidJobInputError(job.name, parsed.error);
      if (registry.get(job.name) !== job) throw new Error(`job ${job.name} is not in the registry`);
      const id = randomUUID();
      const data: JobData = { input: parsed.data, requestId: enqueueOptions.requestId };
      await whenConnected(() =>
        queueOf(job).add(job.name, data, {
          ...jobOptions(job),
          jobId: id,
          ...(enqueueOptions.delayMs ? { delay: enqueueOptions.delayMs } : {}),
          ...(enqueueOptions.priority ? { priority: enqueueOptions.priority } : {}),
        }),
      );
      return { id, name: job.name, state: enqueueOptions.delayMs ? 'delayed' : 'waiting' };
    },

    status,

    async watch(id, listener) {
      const job = await find(id);
      if (!job) return () => undefined;
      const events = reader(job.queueName);
      await events.waitUntilReady();
      let listeners = watchers.get(id);
      if (!listeners) watchers.set(id, (listeners = new Set()));
      listeners.add(listener);
      return () => {
        listeners.delete(listener);
        if (listeners.size === 0) watchers.delete(id);
      };
    },

    async ping() {
      await whenConnected(() => connection.ping());
    },

    async close() {
      await Promise.all([...readers.values(), ...queues.values()].map((q) => q.close()));
      // BullMQ leaves connections it was handed open; the caller owns `connection`.
      await Promise.all(readerConnections.map((c) => c.quit().catch(() => c.disconnect())));
    },
  };
}
