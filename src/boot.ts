// Wiring shared by the two process entries (src/web.ts, workers/main.ts): config in, parts out.
import type { Redis } from 'ioredis';
import { jobs } from '../jobs/index.js';
import { ConfigError, loadConfig, type Config } from './config.js';
import type { Deps } from './deps.js';
import { createLogger, type Logger } from './logger.js';
import {
  createInlineOffloader,
  createQueueOffloader,
  createRegistry,
  retention,
  startRunner,
  type Offloader,
  type Runner,
} from './offload/index.js';
import { createProducerConnection, createWorkerConnection, type TlsOptions } from './redis.js';

export const registry = createRegistry(jobs);

/** Reads the configuration or ends the process, naming every bad key. */
export function configOrExit(env: NodeJS.ProcessEnv): Config {
  try {
    return loadConfig(env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    createLogger('error', 'config').fatal(error.message);
    process.exit(1);
  }
}

/** The offloader for `config.OFFLOAD_MODE`, and the connection it owns (none inline). */
export function connectOffloader(
  config: Config,
  log: Logger,
  deps: Deps,
): { offloader: Offloader; connection?: Redis } {
  if (config.OFFLOAD_MODE === 'inline') return { offloader: createInlineOffloader({ deps, log }) };
  const connection = createProducerConnection(config.REDIS_URL, log, tlsOf(config));
  const offloader = createQueueOffloader({
    registry,
    connection,
    eventsConnection: () => createWorkerConnection(config.REDIS_URL, log, tlsOf(config)),
    prefix: config.QUEUE_PREFIX,
    log,
    mode: config.OFFLOAD_MODE,
    retention: retention(config.RESULT_TTL, config.FAILED_TTL),
  });
  return { offloader, connection };
}

/** Workers for `WORKER_QUEUES`, and the connection they share. */
export function startWorkers(
  config: Config,
  log: Logger,
  deps: Deps,
): { runner: Runner; connection: Redis } {
  const connection = createWorkerConnection(config.REDIS_URL, log, tlsOf(config));
  const runner = startRunner({
    registry,
    queues: config.WORKER_QUEUES,
    connection,
    prefix: config.QUEUE_PREFIX,
    concurrency: { default: config.WORKER_CONCURRENCY, queues: config.QUEUE_CONCURRENCY },
    rateLimits: config.QUEUE_RATE_LIMIT,
    retention: retention(config.RESULT_TTL, config.FAILED_TTL),
    lockMs: config.WORKER_LOCK_MS,
    stalledIntervalMs: config.WORKER_STALLED_INTERVAL_MS,
    deps,
    log,
  });
  return { runner, connection };
}

export const tlsOf = (config: Config): TlsOptions => ({ verify: config.REDIS_TLS_VERIFY });

/** QUIT politely; a connection that cannot (Redis is gone) is dropped. */
export async function quit(connection: Redis | undefined): Promise<void> {
  if (!connection || connection.status === 'end') return;
  if (connection.status !== 'ready') {
    connection.disconnect();
    return;
  }
  await connection.quit().catch(() => {
    connection.disconnect();
  });
}
