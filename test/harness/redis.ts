import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { redisServerArgs } from '../../src/redis/server.js';
import { freePort } from './ports.js';

export interface PrivateRedis {
  url: string;
  port: number;
  /** Stops the server (SHUTDOWN, or SIGKILL with `{ kill: true }`); its data dir stays. */
  stop(options?: { kill?: boolean }): Promise<void>;
  /** Starts it again on the same port, from the same data dir (AOF). */
  start(): Promise<void>;
  /** Stops it and removes its data. */
  destroy(): Promise<void>;
}

export function hasRedisServer(): boolean {
  return spawnSync('redis-server', ['--version']).status === 0;
}

/**
 * A private redis-server on a free loopback port, never the developer's 6379, with AOF
 * `everysec` and `noeviction` as the README recommends for production.
 */
export async function startRedis(extraArgs: string[] = []): Promise<PrivateRedis> {
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), 'offload-redis-'));
  let child: ChildProcess | undefined;

  async function start() {
    child = spawn('redis-server', [...redisServerArgs(port, dir), ...extraArgs], {
      stdio: 'ignore',
    });
    await waitUntilUp(port, child);
  }

  async function stop({ kill = false } = {}) {
    const running = child;
    if (!running || running.exitCode !== null || running.signalCode !== null) return;
    const exited = once(running, 'exit');
    running.kill(kill ? 'SIGKILL' : 'SIGTERM');
    await exited;
  }

  await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    start,
    stop,
    async destroy() {
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function waitUntilUp(port: number, child: ChildProcess) {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`redis-server exited with ${child.exitCode}`);
    const client = new Redis({
      port,
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.ping();
      return;
    } catch {
      // not up yet
    } finally {
      client.disconnect();
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`redis-server did not start on port ${port}`);
}
