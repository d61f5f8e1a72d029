// `npm run dev`: the Procfile's processes, run from TypeScript directly, with a Redis.
// Redis comes from REDIS_URL when set; else a private redis-server from PATH is started with its
// data under .data/redis (and stopped on exit); else this says how to install one.
// This file is development tooling, the one place besides config.ts that reads process.env.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { redisServerArgs } from './redis-server.js';

const DEV_REDIS_PORT = 6390;

function procfile(): [string, string[]][] {
  return readFileSync('Procfile', 'utf8')
    .split('\n')
    .map((line) => /^([\w-]+):\s*node\s+(.*)$/.exec(line.trim()))
    .filter((match) => match !== null)
    .map(([, name = '', args = '']) => [
      name,
      // `node [--import ./dist/a.js] dist/x/y.js` becomes `node --import tsx [--import ./a.ts]
      // x/y.ts`: every compiled file is its TypeScript source, no build step while developing.
      [
        '--import',
        'tsx',
        ...args
          .split(/\s+/)
          .filter(Boolean)
          .map((arg) => arg.replace(/^(?:\.\/)?dist\/(\S+)\.js$/, './$1.ts')),
      ],
    ]);
}

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer()
      .once('error', () => {
        resolve(false);
      })
      .listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

async function privateRedis(): Promise<{ url: string; child?: ChildProcess }> {
  if (spawnSync('redis-server', ['--version']).status !== 0) {
    console.error(`No Redis: set REDIS_URL, or install redis-server (6.2 or newer):
  Debian/Ubuntu: sudo apt-get install redis-server
  macOS:         brew install redis`);
    process.exit(1);
  }
  const url = `redis://127.0.0.1:${DEV_REDIS_PORT}`;
  if (!(await portIsFree(DEV_REDIS_PORT))) {
    console.log(`[dev] port ${DEV_REDIS_PORT} is taken; assuming it is the dev redis: ${url}`);
    return { url };
  }
  mkdirSync('.data/redis', { recursive: true });
  const child = spawn('redis-server', redisServerArgs(DEV_REDIS_PORT, '.data/redis'), {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  console.log(`[dev] started redis-server on ${url} (data in .data/redis)`);
  return { url, child };
}

const redis = process.env.REDIS_URL ? { url: process.env.REDIS_URL } : await privateRedis();
// A slow-ish pretend mail provider, so the demo page shows what inline sending costs; logs
// formatted for a person when one watches this terminal.
const pretty = process.stdout.isTTY ? { LOG_FORMAT: 'pretty' } : {};
const env = { OUTBOX_DELAY_MS: '300', ...pretty, ...process.env, REDIS_URL: redis.url };
const children = procfile().map(([name, args]) => {
  console.log(`[dev] ${name}: node ${args.join(' ')}`);
  // Inherited stdio: each process logs straight to this terminal.
  return { name, child: spawn(process.execPath, args, { env, stdio: 'inherit' }) };
});

let stopping = false;
async function stopAll(code: number) {
  if (stopping) return;
  stopping = true;
  for (const { child } of children) if (child.exitCode === null) child.kill('SIGTERM');
  await Promise.all(
    children.filter(({ child }) => child.exitCode === null).map(({ child }) => once(child, 'exit')),
  );
  if (redis.child) {
    redis.child.kill('SIGTERM');
    await once(redis.child, 'exit');
    console.log('[dev] stopped redis-server');
  }
  process.exit(code);
}

// Ctrl-C reaches the children too (same process group); they shut down on their own.
process.on('SIGINT', () => void stopAll(0));
process.on('SIGTERM', () => void stopAll(0));
for (const { name, child } of children) {
  child.on('exit', (code, signal) => {
    if (stopping) return;
    console.error(`[dev] ${name} exited (${signal ?? String(code)}); stopping the others`);
    void stopAll(code ?? 1);
  });
}
