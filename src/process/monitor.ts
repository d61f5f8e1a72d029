// What the web process shows about the queues: metrics, readiness, and the queue handles the
// dashboard reads. Made by the entry point (it owns connections), handed to createApp.
import { Queue } from 'bullmq';
import type { Cluster, Redis } from 'ioredis';
import type { Config } from '../config.js';
import { countWorkers } from './heartbeat.js';
import type { Logger } from '../logger.js';
import { registerOutboxMetrics } from '../db/metrics.js';
import { createMetrics, type Metrics } from './metrics.js';
import { createOutbox, type SqlClient } from '../offload/index.js';
import { inspectRedis, judgeMemory, type RedisFindings } from '../redis/preflight.js';
import {
  connectionProblem,
  connectWorker,
  describeRedisError,
  isConnectionError,
  redisAddress,
  type TlsOptions,
} from '../redis/connections.js';

/** An outbox row older than this is a warning in /readyz: the relay is behind or stopped. */
const OUTBOX_AGE_WARNING_S = 60;

export interface Readiness {
  ok: boolean;
  mode: Config['OFFLOAD_MODE'];
  redis?: Omit<RedisFindings, 'problems' | 'warnings'>;
  /** Workers heard from in the last few seconds, per queue. */
  workers?: Record<string, number>;
  /** Jobs committed but not yet relayed to BullMQ (see src/offload/outbox.ts). */
  outbox?: { depth: number; oldestAgeSeconds: number };
  /** Why it is not ready (503). */
  problems: string[];
  /** What is wrong but does not stop this process taking requests. */
  warnings: string[];
}

export interface Monitor {
  readonly metrics: Metrics;
  /** One BullMQ handle per queue (none inline), on the fail-fast producer connection. */
  readonly queues: readonly Queue[];
  /** Whether Redis is connected now (always false inline). */
  readonly connected: () => boolean;
  readonly readiness: () => Promise<Readiness>;
  close(): Promise<void>;
}

export function createMonitor({
  config,
  connection,
  queueNames,
  log,
  db,
}: {
  config: Config;
  /** The producer connection; undefined in inline mode. */
  connection: Redis | Cluster | undefined;
  queueNames: readonly string[];
  log: Logger;
  /** Postgres (DATABASE_URL): the outbox's depth and age go into metrics and readiness. */
  db?: SqlClient | undefined;
}): Monitor {
  const prefix = config.QUEUE_PREFIX;
  const queues = connection
    ? queueNames.map((name) => {
        const queue = new Queue(name, { connection, prefix });
        queue.on('error', (error) => {
          if (!isConnectionError(error)) log.warn({ err: error, queue: name }, 'queue error');
        });
        return queue;
      })
    : [];
  const connected = () => connection?.status === 'ready';
  const tls: TlsOptions = { verify: config.REDIS_TLS_VERIFY };
  const metrics = createMetrics({
    queues,
    eventsConnection: () => connectWorker(config.REDIS_URL, log, tls),
    connected,
    log,
  });

  const outbox = db && connection ? createOutbox({ db }) : undefined;
  if (outbox) registerOutboxMetrics(metrics.registry, outbox, log);

  async function readiness(): Promise<Readiness> {
    const ready = await redisReadiness();
    if (!outbox) return ready;
    try {
      ready.outbox = await outbox.depth();
      const { depth, oldestAgeSeconds: age } = ready.outbox;
      if (age > OUTBOX_AGE_WARNING_S) {
        ready.warnings.push(
          `outbox: ${depth} committed jobs wait to be relayed, the oldest for ${age.toFixed(0)} s (is Redis up, and a worker running?)`,
        );
      }
    } catch (error) {
      // Signups need the database: without it they fail.
      ready.ok = false;
      ready.problems.push(`Postgres: ${(error as Error).message}`);
    }
    return ready;
  }

  async function redisReadiness(): Promise<Readiness> {
    const mode = config.OFFLOAD_MODE;
    if (!connection) return { ok: true, mode, problems: [], warnings: [] };
    // Sentences a person can act on, naming the server (never the password).
    const address = redisAddress(config.REDIS_URL);
    if (connection.status !== 'ready') {
      const problem = connectionProblem(connection) ?? `Redis at ${address} is not connected yet`;
      return { ok: false, mode, problems: [problem], warnings: [] };
    }
    try {
      const strict = config.REDIS_PREFLIGHT_STRICT;
      const [{ problems, warnings, ...redis }, workers] = await Promise.all([
        inspectRedis(connection, { strict }),
        countWorkers(connection, prefix, queueNames),
      ]);
      const memory = judgeMemory(redis.memory, redis.maxmemoryPolicy);
      if (memory.problem) problems.push(memory.problem);
      if (memory.warning) warnings.push(memory.warning);
      for (const [queue, count] of Object.entries(workers)) {
        if (count === 0)
          warnings.push(`workers: none is consuming queue "${queue}"; its jobs wait`);
      }
      return { ok: problems.length === 0, mode, redis, workers, problems, warnings };
    } catch (error) {
      return { ok: false, mode, problems: [describeRedisError(error, address)], warnings: [] };
    }
  }

  return {
    metrics,
    queues,
    connected,
    readiness,
    async close() {
      await metrics.close();
      await Promise.all(queues.map((queue) => queue.close()));
    },
  };
}
