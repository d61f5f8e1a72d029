// The `worker` process (Procfile): consumes the queues in WORKER_QUEUES until SIGTERM.
import { configOrExit, quit, startWorkers } from '../src/boot.js';
import { closeDeps, createDeps } from '../src/deps.js';
import { createLogger } from '../src/logger.js';
import { exitOnCrash, exitOnSignals } from '../src/shutdown.js';

const config = configOrExit(process.env);
const log = createLogger(config.LOG_LEVEL, 'worker');
exitOnCrash(log);
const deps = createDeps(config);
const { runner, connection } = startWorkers(config, log, deps);

exitOnSignals(log, config.SHUTDOWN_TIMEOUT_MS, [
  // Stop fetching, let active jobs finish until the deadline, hand back what is left.
  ['workers', (deadline) => runner.close(deadline)],
  ['redis', () => quit(connection)],
  ['deps', () => closeDeps(deps)],
]);
