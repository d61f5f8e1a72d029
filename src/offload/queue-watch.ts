// How the queue offloader watches jobs: job events arrive on one Redis stream per queue, and
// one reader per queue serves every watcher, who gets the job's fresh status on each event.
import { QueueEvents } from 'bullmq';
import type { Cluster, Redis } from 'ioredis';
import { isConnectionError } from './connection-error.js';
import { parentIdOf } from './ids.js';
import type { QueueBackend } from './queue-backend.js';
import { readStatus } from './queue-status.js';
import type { JobEventListener } from './types.js';

const QUEUE_EVENTS = [
  'active',
  'progress',
  'completed',
  'failed',
  'delayed',
  'waiting',
  'removed',
] as const;

export interface Watchers {
  /** Calls `listener` with the fresh status whenever the job changes; returns unsubscribe. */
  watch: (id: string, listener: JobEventListener) => Promise<() => void>;
  /** Tells the job's watchers its status now (a cancel does, without waiting for an event). */
  notify: (jobId: string) => void;
  close: () => Promise<void>;
}

/** `eventsConnection` makes a reader's (blocking reads): called lazily, once per queue. */
export function createWatchers(
  backend: QueueBackend,
  eventsConnection: () => Redis | Cluster,
): Watchers {
  const { prefix, log, find, whenConnected } = backend;
  const watchers = new Map<string, Set<JobEventListener>>();
  const readers = new Map<string, QueueEvents>();
  const readerConnections: (Redis | Cluster)[] = [];
  function notify(jobId: string) {
    const listeners = watchers.get(jobId);
    if (!listeners) return;
    readStatus(backend, jobId).then(
      (current) => {
        if (current) for (const listener of listeners) listener(current);
      },
      (error: unknown) => {
        log.warn({ err: error, jobId }, 'could not read job status');
      },
    );
  }
  function reader(queueName: string) {
    let events = readers.get(queueName);
    if (!events) {
      const readerConnection = eventsConnection();
      readerConnections.push(readerConnection);
      events = new QueueEvents(queueName, { connection: readerConnection, prefix });
      events.on('error', (error) => {
        if (!isConnectionError(error))
          log.warn({ err: error, queue: queueName }, 'queue events error');
      });
      for (const name of QUEUE_EVENTS) {
        events.on(name, ({ jobId }: { jobId: string }) => {
          notify(jobId);
          // News of a workflow's child is news of its parent (its progress adds up from them).
          const parentId = parentIdOf(jobId);
          if (parentId) notify(parentId);
        });
      }
      readers.set(queueName, events);
    }
    return events;
  }

  return {
    notify,
    async watch(id, listener) {
      const job = await find(id);
      if (!job) return () => undefined;
      // A workflow's children may run on other queues: listen there too.
      const { unprocessed = [] } = job.data.children
        ? await whenConnected(() => job.getDependencies())
        : {};
      const queueNames = new Set([job.queueName]);
      for (const key of unprocessed)
        queueNames.add(key.slice(prefix.length + 1, key.lastIndexOf(':')));
      await Promise.all([...queueNames].map((name) => reader(name).waitUntilReady()));
      let listeners = watchers.get(id);
      if (!listeners) watchers.set(id, (listeners = new Set()));
      listeners.add(listener);
      return () => {
        listeners.delete(listener);
        if (listeners.size === 0) watchers.delete(id);
      };
    },
    async close() {
      await Promise.all([...readers.values()].map((events) => events.close()));
      // BullMQ leaves connections it was handed open.
      await Promise.all(readerConnections.map((c) => c.quit().catch(() => c.disconnect())));
    },
  };
}
