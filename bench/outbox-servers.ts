// The outbox suite's servers (bench/outbox.ts), in their own process: today's signup (no
// database: one BullMQ add) and the signup with a database (the user row and the outbox row in
// one transaction, relayed after the commit). Env BENCH_REDIS_URL, BENCH_DATABASE_URL and
// BENCH_DIR in; one `{ports}` message out; on each 'lags' message, the fast path's lags (commit
// to BullMQ, ms) since the last one. It exits when the parent disconnects.
import { once } from 'node:events';
import type { Server } from 'node:http';
import { join } from 'node:path';
import { createApp } from '../src/app.js';
import { connectOffloader, registry } from '../src/process/boot.js';
import { loadConfig } from '../src/config.js';
import { createDeps } from '../src/deps.js';
import { createLogger } from '../src/logger.js';
import { createMonitor } from '../src/process/monitor.js';

export type OutboxVariant = 'today' | 'outbox';
export interface OutboxServersReady {
  ports: Record<OutboxVariant, number>;
}

const lags: number[] = [];

async function serve(variant: OutboxVariant): Promise<number> {
  const config = loadConfig({
    REDIS_URL: process.env.BENCH_REDIS_URL,
    QUEUE_PREFIX: variant,
    ...(variant === 'outbox' && { DATABASE_URL: process.env.BENCH_DATABASE_URL }),
    OUTBOX_DIR: join(process.env.BENCH_DIR ?? '/tmp', variant, 'outbox'),
    STORAGE_DIR: join(process.env.BENCH_DIR ?? '/tmp', variant, 'storage'),
    RATE_LIMIT_SIGNUP: 'off',
    LOG_LEVEL: 'info',
  });
  const log = createLogger(config.LOG_LEVEL, variant);
  const deps = createDeps(config);
  const { offloader, connection } = connectOffloader(config, log, deps, (batch) =>
    lags.push(...batch),
  );
  if (connection && connection.status !== 'ready') await once(connection, 'ready');
  const monitor = createMonitor({ config, connection, queueNames: registry.queues, log });
  const app = createApp({ offloader, deps, log, monitor, redis: connection });
  const server: Server = app.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  return typeof address === 'object' && address ? address.port : 0;
}

const ports = { today: await serve('today'), outbox: await serve('outbox') };
process.send?.({ ports } satisfies OutboxServersReady);
process.on('message', (message) => {
  if (message === 'lags') process.send?.({ lags: lags.splice(0) });
});
process.on('disconnect', () => process.exit(0));
