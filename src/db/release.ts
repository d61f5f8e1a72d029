// The `release` process (Procfile): runs the migrations before a new version's web and worker
// start. A PaaS runs it once per deploy and stops the deploy if it fails.
import { configOrExit } from '../process/boot.js';
import { createLogger } from '../logger.js';
import { migrate } from './migrate.js';

const config = configOrExit(process.env);
const log = createLogger(config.LOG_LEVEL, 'release', config.LOG_FORMAT);
if (!config.DATABASE_URL) {
  log.info('DATABASE_URL is unset: no migrations to run');
} else {
  try {
    await migrate(config.DATABASE_URL, log);
  } catch (error) {
    log.fatal({ err: error }, 'migrations failed');
    process.exitCode = 1;
  }
}
