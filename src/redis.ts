import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { Logger } from './logger.js';

/** How long a producer command may take before the request gives up and answers 503. */
export const PRODUCER_COMMAND_TIMEOUT_MS = 1_000;

const PRODUCER: RedisOptions = {
  enableOfflineQueue: false,
  maxRetriesPerRequest: 0,
  commandTimeout: PRODUCER_COMMAND_TIMEOUT_MS,
  connectTimeout: PRODUCER_COMMAND_TIMEOUT_MS,
};
const WORKER: RedisOptions = { maxRetriesPerRequest: null };

/**
 * A producer connection (web requests): it fails fast instead of queueing commands while Redis
 * is away, so a request answers 503 at once rather than hanging; it still reconnects by itself.
 * To one Redis, or to a cluster when `url` lists several nodes.
 */
export function connectProducer(url: string, log: Logger, tls?: TlsOptions): RedisConnection {
  return connect(url, log, tls, 'producer', PRODUCER);
}

/** A worker connection: waits through outages and reconnects forever, as BullMQ requires. */
export function connectWorker(url: string, log: Logger, tls?: TlsOptions): RedisConnection {
  return connect(url, log, tls, 'worker', WORKER);
}

/** connectProducer for code that needs one plain Redis (benchmarks, tests): no cluster. */
export function createProducerConnection(url: string, log: Logger, tls?: TlsOptions): Redis {
  return connectSingle(url, log, tls, 'producer', PRODUCER);
}

/** connectWorker for code that needs one plain Redis (benchmarks, tests): no cluster. */
export function createWorkerConnection(url: string, log: Logger, tls?: TlsOptions): Redis {
  return connectSingle(url, log, tls, 'worker', WORKER);
}

function connectSingle(...args: Parameters<typeof connect>): Redis {
  const redis = connect(...args);
  if (redis instanceof Cluster) {
    redis.disconnect();
    throw new Error('this needs one Redis URL, not a cluster');
  }
  return redis;
}

/** One Redis, or a Redis Cluster (REDIS_URL lists several nodes). */
export type RedisConnection = Redis | Cluster;

/** REDIS_URL's nodes: one URL, or several, comma-separated, for a cluster. */
export const redisUrls = (url: string): string[] => url.split(',').map((part) => part.trim());

export interface TlsOptions {
  /**
   * false (REDIS_TLS_VERIFY): a rediss:// server's certificate is not checked, for providers
   * whose certificates are self-signed (Heroku Key-Value Store). Encrypted, not authenticated.
   */
  verify: boolean;
}

/**
 * True for a lost or refused connection. Those are logged once per outage by the connection
 * itself, so the queues and workers that relay the same error can ignore them.
 */
export function isConnectionError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return (
    (typeof code === 'string' &&
      /^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENOTFOUND|EPIPE|EHOSTUNREACH)$/.test(code)) ||
    (error instanceof Error && /Connection is closed|Stream isn't writeable/.test(error.message))
  );
}

function connect(
  url: string,
  log: Logger,
  tls: TlsOptions | undefined,
  role: string,
  options: RedisOptions,
): RedisConnection {
  const urls = redisUrls(url);
  const redisOptions: RedisOptions = {
    ...options,
    // Only for rediss://: a `tls` option would turn TLS on for a redis:// URL too.
    ...(url.startsWith('rediss:') && tls?.verify === false
      ? { tls: { rejectUnauthorized: false } }
      : {}),
    connectionName: `offload:${role}`,
    // Back off up to 2 s between reconnects, never give up: outages end.
    retryStrategy: (times) => Math.min(times * 100, 2_000),
  };
  let redis: RedisConnection;
  if (urls.length === 1) {
    redis = new Redis(url, redisOptions);
  } else {
    // A cluster: the nodes to start from (it finds the rest), and the first URL's user,
    // password and TLS for every node.
    const first = new URL(urls[0] ?? '');
    const { retryStrategy, ...nodeOptions } = redisOptions;
    redis = new Cluster(
      urls.map((node) => ({
        host: new URL(node).hostname,
        port: Number(new URL(node).port || 6379),
      })),
      {
        redisOptions: {
          ...nodeOptions,
          ...(first.username ? { username: decodeURIComponent(first.username) } : {}),
          ...(first.password ? { password: decodeURIComponent(first.password) } : {}),
          ...(first.protocol === 'rediss:' && !nodeOptions.tls ? { tls: {} } : {}),
        },
        clusterRetryStrategy: retryStrategy,
        enableOfflineQueue: options.enableOfflineQueue ?? true,
      },
    );
  }
  // An emitter without an `error` listener crashes the process; log it once per outage instead.
  let down = false;
  redis.on('error', (error: Error) => {
    if (!down) log.warn({ err: error, role }, 'redis connection error');
    down = true;
  });
  redis.on('ready', () => {
    if (down) log.info({ role }, 'redis connection restored');
    down = false;
  });
  return redis;
}
