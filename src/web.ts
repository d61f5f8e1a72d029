// The `web` process (Procfile): serves HTTP and enqueues; in `embedded` mode it also runs jobs.
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { createApp } from './app.js';
import {
  configOrExit,
  openOffloader,
  openRelayLoop,
  openWorkers,
  quit,
  registry,
} from './process/boot.js';
import { closeDeps, createDeps } from './deps.js';
import { startHeartbeat } from './process/heartbeat.js';
import { createHttpServer } from './http/server.js';
import { createLogger } from './logger.js';
import { createMonitor } from './process/monitor.js';
import { preflightOnConnect } from './redis/preflight.js';
import { exitOnCrash, exitOnSignals } from './process/shutdown.js';
import { flushTelemetry } from './process/telemetry-hooks.js';

const REDIS_WAIT_MS = 5_000;

const config = configOrExit(process.env);
const log = createLogger(config.LOG_LEVEL, 'web', config.LOG_FORMAT);
exitOnCrash(log);
const deps = createDeps(config);
const { offloader, connection } = openOffloader(config, log, deps);
const strict = config.REDIS_PREFLIGHT_STRICT;
if (connection) preflightOnConnect(connection, { strict, log, refuse: () => process.exit(1) });
const monitor = createMonitor({
  config,
  connection,
  queueNames: registry.queues,
  log,
  db: deps.db,
});
const workers = config.OFFLOAD_MODE === 'embedded' ? openWorkers(config, log, deps) : undefined;
const relayLoop = workers && openRelayLoop(config, log, deps);
const heartbeat =
  workers &&
  startHeartbeat({
    redis: workers.connection,
    prefix: config.QUEUE_PREFIX,
    queues: workers.runner.queues,
    log,
  });

// Give Redis a moment before taking traffic, so the first requests are not 503s; if it stays
// away, listen anyway: /readyz says why, and enqueues answer 503 until it is back.
if (connection && connection.status !== 'ready') {
  // (Not events.once: it would reject on the connection's first 'error' while Redis is away.)
  const ready = new Promise((resolve) => connection.once('ready', resolve));
  await Promise.race([ready, sleep(REDIS_WAIT_MS, undefined, { ref: false })]);
}
const app = createApp({ offloader, deps, log, monitor, redis: connection });
const server = createHttpServer(app, config).listen(config.PORT);
await once(server, 'listening');
const address = server.address();
const port = typeof address === 'object' && address ? address.port : config.PORT;
log.info({ port, mode: config.OFFLOAD_MODE, mail: deps.mailer.via }, 'web listening');

exitOnSignals(log, config.SHUTDOWN_TIMEOUT_MS, [
  [
    'http',
    async (deadline) => {
      // Stop accepting, let in-flight requests finish; long-lived ones (event streams) are cut
      // at the deadline, and their browsers reconnect to another process.
      const closed = new Promise((resolve) => server.close(resolve));
      server.closeIdleConnections();
      const cut = setTimeout(
        () => server.closeAllConnections(),
        Math.max(0, deadline - Date.now()),
      );
      await closed;
      clearTimeout(cut);
    },
  ],
  ['heartbeat', () => heartbeat?.stop()],
  ['workers', (deadline) => workers?.runner.close(deadline)],
  ['relay', () => relayLoop?.relay.close()],
  ['monitor', () => monitor.close()],
  ['queues', () => offloader.close()],
  [
    'redis',
    () =>
      Promise.all([quit(connection), quit(workers?.connection), quit(relayLoop?.connection)]).then(
        () => undefined,
      ),
  ],
  ['deps', () => closeDeps(deps)],
  // Last: the spans of everything above go out before the process exits.
  ['telemetry', flushTelemetry],
]);
