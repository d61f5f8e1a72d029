import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { Logger } from '../logger.js';

// The offloader core's test (src/offload/ imports nothing of the app): one test for both.
export { isConnectionError } from '../offload/index.js';

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
  watchOutages(redis, url, role, log);
  return redis;
}

/** How often a process still waiting for Redis says so (the first failure is logged at once). */
export const OUTAGE_LOG_EVERY_MS = 10_000;

const WAITING_FOR: Record<string, string> = {
  producer: 'enqueues answer 503 until it is back',
  worker: 'jobs wait in Redis, and this process takes them up again once it is back',
};

const problems = new WeakMap<RedisConnection, string>();

/** Why the connection is down now, as a sentence for /readyz; undefined while it is up. */
export const connectionProblem = (redis: RedisConnection): string | undefined =>
  problems.get(redis);

/** REDIS_URL's host:port (every node of a cluster), never its user or password. */
export function redisAddress(url: string): string {
  return redisUrls(url)
    .map((node) => {
      try {
        const { hostname, port } = new URL(node);
        return `${hostname}:${port || 6379}`;
      } catch {
        return '(unparsable REDIS_URL)';
      }
    })
    .join(',');
}

/**
 * A Redis error in words an operator can act on, naming the server (never the password).
 * Redis's own replies (OOM, NOAUTH, …) are kept after the sentence.
 */
export function describeRedisError(error: unknown, address: string): string {
  const code = (error as { code?: unknown } | null)?.code;
  const message = error instanceof Error ? error.message : String(error);
  if (code === 'ECONNREFUSED') {
    return `Redis at ${address} refuses connections: is it running, and is REDIS_URL right?`;
  }
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
    return `the Redis host ${address} is not found (DNS): check REDIS_URL`;
  }
  if (code === 'ETIMEDOUT' || /ETIMEDOUT|Command timed out/.test(message)) {
    return `Redis at ${address} does not answer in time (${message}): is it overloaded, or behind a firewall?`;
  }
  if (code === 'ECONNRESET' || code === 'EPIPE' || code === 'EHOSTUNREACH') {
    return `the connection to Redis at ${address} was cut (${code}); reconnecting`;
  }
  if (/Stream isn't writeable|Connection is closed|enableOfflineQueue/.test(message)) {
    return `Redis at ${address} is not connected; reconnecting`;
  }
  if (message.startsWith('OOM ')) {
    return `Redis at ${address} is out of memory (maxmemory reached under noeviction): it refuses new jobs until memory is freed or maxmemory is raised. Redis said: ${message}`;
  }
  if (/NOAUTH|WRONGPASS|invalid password/i.test(message)) {
    return `Redis at ${address} refused the credentials in REDIS_URL: ${message}`;
  }
  return `Redis at ${address}: ${message}`;
}

/**
 * Logs a connection's outages: the first failure at once, then one line every
 * OUTAGE_LOG_EVERY_MS while it lasts (ioredis retries up to every 2 s; the queues and workers
 * on the connection relay each failure too, and drop it: see isConnectionError), then the
 * recovery. An emitter without an `error` listener would crash the process.
 */
function watchOutages(redis: RedisConnection, url: string, role: string, log: Logger): void {
  const address = redisAddress(url);
  const waiting = WAITING_FOR[role] ?? 'waiting for it';
  let since: number | undefined;
  let logged = 0;
  redis.on('error', (error: Error) => {
    const problem = describeRedisError(error, address);
    problems.set(redis, problem);
    const now = Date.now();
    if (since !== undefined && now - logged < OUTAGE_LOG_EVERY_MS) return;
    since ??= now;
    logged = now;
    log.warn(
      { err: error, role, redis: address, downForMs: now - since },
      `redis connection error: ${problem} (${waiting})`,
    );
  });
  redis.on('ready', () => {
    problems.delete(redis);
    if (since !== undefined) {
      log.info(
        { role, redis: address, downForMs: Date.now() - since },
        'redis connection restored',
      );
    }
    since = undefined;
  });
}
