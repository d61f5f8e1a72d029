import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from './logger.js';

/** How long a producer command may take before the request gives up and answers 503. */
export const PRODUCER_COMMAND_TIMEOUT_MS = 1_000;

/**
 * A producer connection (web requests): it fails fast instead of queueing commands while Redis
 * is away, so a request answers 503 at once rather than hanging; it still reconnects by itself.
 */
export function createProducerConnection(url: string, log: Logger, tls?: TlsOptions): Redis {
  return connect(url, log, tls, 'producer', {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: PRODUCER_COMMAND_TIMEOUT_MS,
    connectTimeout: PRODUCER_COMMAND_TIMEOUT_MS,
  });
}

/** A worker connection: waits through outages and reconnects forever, as BullMQ requires. */
export function createWorkerConnection(url: string, log: Logger, tls?: TlsOptions): Redis {
  return connect(url, log, tls, 'worker', { maxRetriesPerRequest: null });
}

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
): Redis {
  const redis = new Redis(url, {
    ...options,
    // Only for rediss://: a `tls` option would turn TLS on for a redis:// URL too.
    ...(url.startsWith('rediss:') && tls?.verify === false
      ? { tls: { rejectUnauthorized: false } }
      : {}),
    connectionName: `offload:${role}`,
    // Back off up to 2 s between reconnects, never give up: outages end.
    retryStrategy: (times) => Math.min(times * 100, 2_000),
  });
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
