// Worker heartbeats: each worker process says, every few seconds, which queues it consumes, so
// the web process's /readyz can tell whether anyone is working on each queue.
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Cluster, Redis } from 'ioredis';
import type { Logger } from '../logger.js';

export const HEARTBEAT_EVERY_MS = 5_000;
/** A worker not heard from for this long (three missed beats) counts as gone. */
export const HEARTBEAT_TTL_MS = 15_000;

/** One sorted set per queue: members are workers, scores the time of their last beat. */
const keyOf = (prefix: string, queue: string) => `${prefix}:heartbeats:${queue}`;

export interface Heartbeat {
  readonly id: string;
  /** Settles after the first beat was written (or failed). */
  readonly first: Promise<void>;
  /** Stops beating and takes this worker off the lists at once. */
  stop(): Promise<void>;
}

/**
 * Beats for `queues` on `redis` (a worker connection). Times are this machine's clock: a skew
 * between machines of less than the TTL does not matter.
 */
export function startHeartbeat({
  redis,
  prefix,
  queues,
  log,
  everyMs = HEARTBEAT_EVERY_MS,
}: {
  redis: Redis | Cluster;
  prefix: string;
  queues: readonly string[];
  log: Logger;
  everyMs?: number;
}): Heartbeat {
  const id = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  // While Redis is away a worker connection queues commands: one beat in flight at most.
  let pending: Promise<void> | undefined;
  const beat = () => {
    if (pending) return pending;
    const now = Date.now();
    const multi = redis.multi();
    for (const queue of queues) {
      const key = keyOf(prefix, queue);
      multi.zadd(key, now, id);
      multi.zremrangebyscore(key, '-inf', now - HEARTBEAT_TTL_MS); // the departed
      multi.pexpire(key, HEARTBEAT_TTL_MS * 4); // a queue nobody consumes any more
    }
    pending = multi.exec().then(
      () => undefined,
      (error: unknown) => {
        log.debug({ err: error }, 'heartbeat not written');
      },
    );
    void pending.finally(() => (pending = undefined));
    return pending;
  };
  const first = beat();
  const timer = setInterval(() => void beat(), everyMs);
  timer.unref();
  return {
    id,
    first,
    async stop() {
      clearInterval(timer);
      // Without Redis the lists cannot be told; the TTL takes this worker off them instead.
      if (redis.status !== 'ready') return;
      await pending;
      const multi = redis.multi();
      for (const queue of queues) multi.zrem(keyOf(prefix, queue), id);
      await multi.exec();
    },
  };
}

/** Workers heard from within the TTL, per queue. */
export async function countWorkers(
  redis: Redis | Cluster,
  prefix: string,
  queues: readonly string[],
): Promise<Record<string, number>> {
  const since = Date.now() - HEARTBEAT_TTL_MS;
  const pipeline = redis.pipeline();
  for (const queue of queues) pipeline.zcount(keyOf(prefix, queue), since, '+inf');
  const replies = (await pipeline.exec()) ?? [];
  return Object.fromEntries(
    queues.map((queue, i) => {
      const [error, count] = replies[i] ?? [new Error('no reply')];
      if (error) throw error;
      return [queue, Number(count)];
    }),
  );
}
