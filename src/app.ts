import express, { type Express } from 'express';
import { adminRouter } from '../routes/admin.js';
import { deadLettersRouter } from '../routes/dead-letters.js';
import { demoRouter } from '../routes/demo.js';
import { filesRouter } from '../routes/files.js';
import { healthRouter } from '../routes/health.js';
import { metricsRouter } from '../routes/metrics.js';
import { outboxRouter } from '../routes/outbox.js';
import { reportsRouter } from '../routes/reports.js';
import { signupRouter } from '../routes/signup.js';
import { thumbnailsRouter } from '../routes/thumbnails.js';
import { webhooksRouter } from '../routes/webhooks.js';
import { DEV_SIGNING_SECRET } from './config.js';
import type { Deps } from './deps.js';
import { setDiscardLimits } from './http/drain.js';
import { errorHandler, notFound } from './http/errors.js';
import { jsonBody } from './http/json-body.js';
import type { Logger } from './logger.js';
import type { Monitor } from './process/monitor.js';
import { jobsRouter, type Offloader } from './offload/index.js';
import type { RedisConnection } from './redis/connections.js';
import { requestLog } from './http/request-log.js';
import { installSecurity } from './http/security.js';

export interface AppDeps {
  offloader: Offloader;
  deps: Deps;
  log: Logger;
  /** Metrics, readiness and the dashboard's queues (src/process/monitor.ts). */
  monitor: Monitor;
  /** The producer connection (none inline): the rate limits count there (src/http/rate-limit.ts). */
  redis?: RedisConnection | undefined;
}

/** The Express app. It never listens, starts workers or exits: the entry points do that. */
export function createApp({ offloader, deps, log, monitor, redis }: AppDeps): Express {
  if (deps.config.SIGNING_SECRET === DEV_SIGNING_SECRET) {
    log.warn(
      'SIGNING_SECRET is unset: download links are signed with the public development secret, so anyone can forge them. Set SIGNING_SECRET before deploying.',
    );
  }
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', 1); // behind the PaaS router: req.ip and req.protocol come from it
  const { DISCARD_MAX_BYTES: maxBytes, DISCARD_MAX_MS: maxMs } = deps.config;
  setDiscardLimits(app, { maxBytes, maxMs });

  app.use(requestLog(log));
  app.use(monitor.metrics.httpMetrics);
  // Headers and rate limits, before any route reads a body (src/http/security.ts).
  installSecurity(app, { config: deps.config, redis, log });
  // Before the app-wide JSON parser: a roster is bigger than 16 kB, so it has its own limit.
  app.use(reportsRouter({ offloader, deps }));
  app.use(jsonBody(16 * 1024));

  // The routes that take work come first: each router a request walks through costs it a few µs.
  app.use(signupRouter({ offloader, deps }));
  app.use(thumbnailsRouter({ offloader, deps }));
  app.use(webhooksRouter({ offloader, deps }));
  app.use(jobsRouter({ offloader }));
  app.use(filesRouter({ storage: deps.storage, signer: deps.signer }));
  if (deps.config.DEMO_PAGE) app.use(demoRouter());
  app.use(healthRouter({ readiness: monitor.readiness }));
  app.use(metricsRouter({ registry: monitor.metrics.registry, token: deps.config.METRICS_TOKEN }));
  app.use(
    adminRouter({
      queues: monitor.queues,
      password: deps.config.ADMIN_PASSWORD,
      writes: deps.config.ADMIN_WRITES,
      connected: monitor.connected,
      log,
    }),
  );
  app.use(
    deadLettersRouter({
      monitor,
      password: deps.config.ADMIN_PASSWORD,
      writes: deps.config.ADMIN_WRITES,
      log,
    }),
  );
  // Development surfaces (DEMO_PAGE above, OUTBOX_PAGE here): off by default in production.
  const outboxPage = deps.config.OUTBOX_PAGE;
  if (deps.mailer.via === 'outbox' && outboxPage !== 'off') {
    const password = outboxPage === 'admin' ? deps.config.ADMIN_PASSWORD : null;
    app.use(outboxRouter({ outboxDir: deps.config.OUTBOX_DIR, password, log }));
  }

  app.use(notFound);
  app.use(errorHandler);
  return app;
}
