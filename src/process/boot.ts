// Wiring shared by the two process entries (src/web.ts, workers/main.ts): config in, parts out.
import { Cluster, type Redis } from 'ioredis';
import { jobs } from '../../jobs/index.js';
import { ConfigError, loadConfig, type Config } from '../config.js';
import type { Deps } from '../deps.js';
import { createLogger, type Logger } from '../logger.js';
import {
  createInlineOffloader,
  createOutbox,
  createQueueOffloader,
  createRegistry,
  retention,
  startRelay,
  startRunner,
  withOutbox,
  type Offloader,
  type Relay,
  type Runner,
} from '../offload/index.js';
import {
  connectProducer,
  connectWorker,
  type RedisConnection,
  type TlsOptions,
} from '../redis/connections.js';
import { telemetry } from './telemetry-hooks.js';

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

/**
 * The offloader for `config.OFFLOAD_MODE`, and the connection it owns (none inline): to one
 * Redis, or to a cluster when REDIS_URL lists several nodes.
 */
export function openOffloader(
  config: Config,
  log: Logger,
  deps: Deps,
  /** Each fast-path batch's lags, commit to BullMQ, in ms (the bench reads them). */
  onRelayed?: (lagsMs: number[]) => void,
): { offloader: Offloader; connection?: RedisConnection } {
  if (config.OFFLOAD_MODE === 'inline') {
    // enqueue({ tx }) runs the job after the commit.
    return { offloader: withOutbox(createInlineOffloader({ deps, log }), { registry }) };
  }
  const connection = connectProducer(config.REDIS_URL, log, tlsOf(config));
  const queued = createQueueOffloader({
    registry,
    connection,
    eventsConnection: () => connectWorker(config.REDIS_URL, log, tlsOf(config)),
    prefix: config.QUEUE_PREFIX,
    log,
    mode: config.OFFLOAD_MODE,
    retention: retention(config.RESULT_TTL, config.FAILED_TTL),
    tracing: telemetry()?.jobs,
  });
  // With a database, enqueue({ tx }) records the job in the caller's transaction (the outbox)
  // and the fast path relays it after the commit; the workers' loops relay what it missed.
  const relay = deps.db && openRelay(config, log, deps, connection, false, onRelayed);
  const offloader = withOutbox(queued, {
    registry,
    outbox: relay && createOutbox({ db: relay.db }),
    relayNow: config.OUTBOX_FAST_PATH ? relay?.relay.relayNow : undefined,
  });
  offloader.close = async () => {
    await relay?.relay.close();
    await queued.close();
  };
  return { offloader, connection };
}

/** The outbox's relay on `connection` (a producer's: adds fail fast); `loop` for workers. */
function openRelay(
  config: Config,
  log: Logger,
  deps: Deps,
  connection: RedisConnection,
  loop: boolean,
  onRelayed?: (lagsMs: number[]) => void,
): { relay: Relay; db: NonNullable<Deps['db']> } | undefined {
  const db = deps.db;
  if (!db) return undefined;
  const relay = startRelay({
    outbox: createOutbox({ db }),
    connect: () => db.connect(),
    registry,
    connection,
    prefix: config.QUEUE_PREFIX,
    log,
    retention: retention(config.RESULT_TTL, config.FAILED_TTL),
    loop,
    intervalMs: config.OUTBOX_RELAY_INTERVAL_MS,
    onRelayed,
  });
  return { relay, db };
}

/**
 * The relay loop a worker runs when there is a database (several workers' loops share the
 * rows, never take the same one), on a producer connection of its own (fail fast).
 */
export function openRelayLoop(
  config: Config,
  log: Logger,
  deps: Deps,
): { relay: Relay; connection: RedisConnection } | undefined {
  if (!deps.db) return undefined;
  const connection = connectProducer(config.REDIS_URL, log, tlsOf(config));
  const opened = openRelay(config, log, deps, connection, true);
  return opened && { relay: opened.relay, connection };
}

/** Workers for `WORKER_QUEUES`, and the connection they share (one Redis, or a cluster). */
export function openWorkers(
  config: Config,
  log: Logger,
  deps: Deps,
): { runner: Runner; connection: RedisConnection } {
  const connection = connectWorker(config.REDIS_URL, log, tlsOf(config));
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
    tracing: telemetry()?.jobs,
  });
  return { runner, connection };
}

/** openOffloader for code that needs one plain Redis (benchmarks, tests): no cluster. */
export function connectOffloader(
  config: Config,
  log: Logger,
  deps: Deps,
  onRelayed?: (lagsMs: number[]) => void,
): { offloader: Offloader; connection?: Redis } {
  const { offloader, connection } = openOffloader(config, log, deps, onRelayed);
  return { offloader, connection: connection && single(connection) };
}

/** openWorkers for code that needs one plain Redis (benchmarks, tests): no cluster. */
export function startWorkers(
  config: Config,
  log: Logger,
  deps: Deps,
): { runner: Runner; connection: Redis } {
  const { runner, connection } = openWorkers(config, log, deps);
  return { runner, connection: single(connection) };
}

function single(connection: RedisConnection): Redis {
  if (connection instanceof Cluster) {
    connection.disconnect();
    throw new Error('this needs REDIS_URL to name one Redis, not a cluster');
  }
  return connection;
}

export const tlsOf = (config: Config): TlsOptions => ({ verify: config.REDIS_TLS_VERIFY });

/** QUIT politely; a connection that cannot (Redis is gone) is dropped. */
export async function quit(connection: RedisConnection | undefined): Promise<void> {
  if (!connection || connection.status === 'end') return;
  if (connection.status !== 'ready') {
    connection.disconnect();
    return;
  }
  await connection.quit().catch(() => {
    connection.disconnect();
  });
}
