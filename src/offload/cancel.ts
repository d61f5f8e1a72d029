// Cancel across processes. BullMQ's `worker.cancelJob` only reaches jobs held by the process
// that calls it, so a cancel is published on one Redis channel that every worker process
// listens to; the one holding the job aborts it. The job is also marked cancelled in its data
// (queue-cancel.ts), which covers a job no worker holds yet: it is dropped at pickup.
import type { Cluster, Redis } from 'ioredis';
import type { Logger } from './logger.js';
import { isConnectionError } from './connection-error.js';

export const cancelChannel = (prefix: string) => `${prefix}:offload:cancel`;

/** How long a cancel for a job this process does not hold is remembered (see `recent`). */
const REMEMBER_MS = 60_000;

export interface CancelListener {
  /** True when `id` was cancelled lately: a pickup racing its cancel message drops it. */
  recent(id: string): boolean;
  close(): Promise<void>;
}

/**
 * Subscribes (on its own connection: a subscriber can do nothing else) and calls `abort(id)`
 * for each cancel; `abort` answers whether this process held the job.
 */
export function listenForCancels(options: {
  connection: { duplicate(): Redis | Cluster };
  prefix: string;
  abort: (id: string) => boolean;
  log: Logger;
}): CancelListener {
  const { prefix, abort, log } = options;
  const subscriber = options.connection.duplicate();
  subscriber.on('error', (error: unknown) => {
    if (!isConnectionError(error)) log.warn({ err: error }, 'cancel listener error');
  });
  const unheld = new Map<string, number>();
  subscriber.on('message', (_channel: string, id: string) => {
    if (abort(id)) {
      log.info({ jobId: id }, 'job cancelled: aborting it');
      return;
    }
    const now = Date.now();
    unheld.set(id, now);
    for (const [old, at] of unheld) {
      if (now - at < REMEMBER_MS) break; // oldest first: the rest are younger
      unheld.delete(old);
    }
  });
  // ioredis subscribes again by itself after a reconnect.
  subscriber.subscribe(cancelChannel(prefix)).catch((error: unknown) => {
    log.error({ err: error }, 'could not listen for cancels');
  });
  return {
    recent: (id) => unheld.has(id),
    async close() {
      await subscriber.quit().catch(() => subscriber.disconnect());
    },
  };
}
