// The `worker` process (Procfile): consumes the queues in WORKER_QUEUES until SIGTERM.
import { configOrExit, openRelayLoop, openWorkers, quit } from '../src/process/boot.js';
import { closeDeps, createDeps } from '../src/deps.js';
import { startHeartbeat } from '../src/process/heartbeat.js';
import { createLogger } from '../src/logger.js';
import { preflightOnConnect } from '../src/redis/preflight.js';
import { exitOnCrash, exitOnSignals } from '../src/process/shutdown.js';
import { flushTelemetry } from '../src/process/telemetry-hooks.js';

const config = configOrExit(process.env);
const log = createLogger(config.LOG_LEVEL, 'worker', config.LOG_FORMAT);
exitOnCrash(log);
const deps = createDeps(config);
const { runner, connection } = openWorkers(config, log, deps);
preflightOnConnect(connection, {
  strict: config.REDIS_PREFLIGHT_STRICT,
  log,
  refuse: () => process.exit(1),
});
// With a database: relays the outbox rows a crash or a Redis outage left behind.
const relayLoop = openRelayLoop(config, log, deps);
// Tells /readyz which queues have a live worker.
const heartbeat = startHeartbeat({
  redis: connection,
  prefix: config.QUEUE_PREFIX,
  queues: runner.queues,
  log,
});

exitOnSignals(log, config.SHUTDOWN_TIMEOUT_MS, [
  // First, so no job starts after the signal: stop fetching, let active jobs finish until the
  // deadline, hand back what is left.
  ['workers', (deadline) => runner.close(deadline)],
  ['relay', () => relayLoop?.relay.close()],
  ['heartbeat', () => heartbeat.stop()],
  [
    'redis',
    () => Promise.all([quit(connection), quit(relayLoop?.connection)]).then(() => undefined),
  ],
  ['deps', () => closeDeps(deps)],
  // Last: the spans of everything above go out before the process exits.
  ['telemetry', flushTelemetry],
]);
