import { randomUUID } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import type { Express } from 'express';
import type { Redis } from 'ioredis';
import { createApp } from '../../src/app.js';
import {
  connectOffloader,
  openRelayLoop,
  quit,
  registry,
  startWorkers,
} from '../../src/process/boot.js';
import { loadConfig, type Config } from '../../src/config.js';
import { closeDeps, createDeps, type Deps } from '../../src/deps.js';
import { createLogger } from '../../src/logger.js';
import { createMonitor, type Monitor } from '../../src/process/monitor.js';
import type { Offloader, Runner } from '../../src/offload/index.js';
import { sharedRedisUrl } from './global.js';
import { GENEROUS_RATE_LIMITS } from './limits.js';

export interface TestApp {
  app: Express;
  config: Config;
  deps: Deps;
  offloader: Offloader;
  monitor: Monitor;
  /** Counts jobs of every state in a queue: to prove that nothing was enqueued. */
  countJobs(queue?: string): Promise<number>;
  /**
   * Starts workers in this process (queue mode), as the worker process would: with a database
   * (DATABASE_URL), the outbox's relay loop too.
   */
  startWorkers(): Runner;
  close(): Promise<void>;
}

/**
 * The real app on the shared private Redis, under a queue prefix of its own so tests never see
 * each other's jobs. `env` overrides configuration keys.
 */
export async function createTestApp(env: Record<string, string> = {}): Promise<TestApp> {
  const dir = await mkdtemp(join(tmpdir(), 'offload-app-'));
  const config = loadConfig({
    REDIS_URL: sharedRedisUrl(),
    QUEUE_PREFIX: `t${randomUUID().slice(0, 8)}`,
    OUTBOX_DIR: join(dir, 'outbox'),
    STORAGE_DIR: join(dir, 'storage'),
    LOG_LEVEL: 'silent',
    ...GENEROUS_RATE_LIMITS,
    ...env,
  });
  const log = createLogger(config.LOG_LEVEL, 'test');
  const deps = createDeps(config);
  const { offloader, connection } = connectOffloader(config, log, deps);
  if (connection && connection.status !== 'ready' && config.REDIS_URL === sharedRedisUrl()) {
    await new Promise((resolve) => connection.once('ready', resolve));
  }
  const monitor = createMonitor({
    config,
    connection,
    queueNames: registry.queues,
    log,
    db: deps.db,
  });
  const workers: { runner: Runner; connection: Redis }[] = [];
  const relays: NonNullable<ReturnType<typeof openRelayLoop>>[] = [];
  const inspectors: Queue[] = [];
  return {
    app: createApp({ offloader, deps, log, monitor, redis: connection }),
    monitor,
    config,
    deps,
    offloader,
    async countJobs(name = 'mail') {
      const queue = new Queue(name, {
        connection: { url: config.REDIS_URL },
        prefix: config.QUEUE_PREFIX,
      });
      inspectors.push(queue);
      const counts = await queue.getJobCounts();
      return Object.values(counts).reduce((a, b) => a + b, 0);
    },
    startWorkers() {
      const started = startWorkers(config, log, deps);
      workers.push(started);
      const relay = openRelayLoop(config, log, deps);
      if (relay) relays.push(relay);
      return started.runner;
    },
    async close() {
      for (const { relay, connection: c } of relays) {
        await relay.close();
        await quit(c);
      }
      for (const { runner, connection: c } of workers) {
        await runner.close(Date.now() + 5_000);
        await quit(c);
      }
      await Promise.all(inspectors.map((q) => q.close()));
      await monitor.close();
      await offloader.close();
      await quit(connection);
      await closeDeps(deps);
    },
  };
}

/** Resolves when `check` returns a value other than undefined; polls, bounded by `timeoutMs`. */
export async function eventually<T>(
  check: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 10_000,
  what = 'condition',
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what} not reached within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
