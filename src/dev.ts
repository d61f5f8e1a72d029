// `npm run dev`: every Procfile process, run from TypeScript directly (tsx), with a Redis, and
// restarted when a source file changes. `npm run dev -- --procfile <path>` reads another
// Procfile; `--env-file <path>` another .env.
// Redis comes from REDIS_URL when set; else a private redis-server from PATH is started with its
// data under .data/redis (and stopped on exit, never on a reload); else this says how to install
// one. Postgres likewise (src/dev/postgres.ts), but optional; the Procfile's `release` process
// migrates it before the others start. This file is development tooling, the one place besides config.ts that reads process.env.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { parseArgs } from 'node:util';
import { devEnvironment } from './dev/env.js';
import { startDevPostgres } from './dev/postgres.js';
import { devProcess, parseProcfile, type DevProcess } from './dev/procfile.js';
import { WATCHED, watchSources } from './dev/watch.js';
import { redisServerArgs } from './redis/server.js';

const DEV_REDIS_PORT = 6390;
/**
 * `web` (unless it runs jobs: OFFLOAD_MODE=embedded) holds nothing worth waiting for on a
 * reload, but an open demo page keeps an event stream that would hold it for the whole
 * SHUTDOWN_TIMEOUT_MS: in development it is cut after 2 s (the browser reconnects). Workers
 * keep the configured grace, so their active jobs finish or are handed back.
 */
const WEB_DEV_SHUTDOWN_MS = '2000';

const { values: options } = parseArgs({
  options: {
    procfile: { type: 'string', default: 'Procfile' },
    'env-file': { type: 'string', default: '.env' },
  },
});
const procfilePath = options.procfile;
const envPath = options['env-file'];

function readEnv(): Record<string, string> {
  const dotenv = existsSync(envPath) ? readFileSync(envPath, 'utf8') : undefined;
  // Logs formatted for a person when one watches this terminal (pino-pretty, a devDependency).
  return devEnvironment(process.env, dotenv, process.stdout.isTTY ? { LOG_FORMAT: 'pretty' } : {});
}

/** The processes to run, or an Error naming the Procfile line that cannot be mapped. */
function readProcesses(env: Record<string, string>): DevProcess[] {
  return parseProcfile(readFileSync(procfilePath, 'utf8')).map((entry) =>
    devProcess(entry, { env, exists: existsSync }),
  );
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

let env = readEnv();
let processes: DevProcess[];
try {
  processes = readProcesses(env);
} catch (error) {
  console.error(`[dev] ${(error as Error).message}`);
  process.exit(1);
}
const redis = env.REDIS_URL ? { url: env.REDIS_URL } : await privateRedis();
// Postgres: DATABASE_URL if set; else a private one (src/dev/postgres.ts); else none, and the
// signup runs without a database (it stores nothing).
const postgres = env.DATABASE_URL
  ? undefined
  : await startDevPostgres((line) => console.log(`[dev] ${line}`));
const database = env.DATABASE_URL ?? postgres?.url;
if (!database) {
  console.log(`[dev] no Postgres (set DATABASE_URL, or install postgresql): the signup stores no user
  Debian/Ubuntu: sudo apt-get install postgresql
  macOS:         brew install postgresql`);
}

interface Running {
  name: string;
  child: ChildProcess;
  exited: Promise<[code: number | null, signal: NodeJS.Signals | null]>;
}
let running: Running[] = [];
let stopping = false;
const isStopping = () => stopping;

function start({ type, env: own, args }: DevProcess): Running {
  const childEnv: Record<string, string> = {
    ...env,
    REDIS_URL: redis.url,
    ...(database && { DATABASE_URL: database }),
    ...own,
  };
  const grace = own.SHUTDOWN_TIMEOUT_MS ?? process.env.SHUTDOWN_TIMEOUT_MS;
  if (type === 'web' && childEnv.OFFLOAD_MODE !== 'embedded' && grace === undefined) {
    childEnv.SHUTDOWN_TIMEOUT_MS = WEB_DEV_SHUTDOWN_MS;
  }
  const assigned = Object.entries(own).map(([k, v]) => `${k}=${v} `);
  console.log(`[dev] ${type}: ${assigned.join('')}node ${args.join(' ')}`);
  // Inherited stdio: each process logs straight to this terminal.
  const child = spawn(process.execPath, args, { env: childEnv, stdio: 'inherit' });
  const exited = once(child, 'exit') as Running['exited'];
  return { name: type, child, exited };
}

/**
 * `release` runs to its end before the others start, as a platform's release phase runs before
 * the new processes: once when `npm run dev` starts, and again only when the Procfile changes
 * (not on every save). A failed release leaves the others stopped.
 */
async function release(): Promise<boolean> {
  const step = processes.find((p) => p.type === 'release');
  if (!step) return true;
  const run = start(step);
  const [code, signal] = await run.exited;
  if (code === 0) return true;
  console.error(`[dev] release failed (${signal ?? String(code)}); not starting the others`);
  return false;
}

function startAll() {
  running = processes.filter((p) => p.type !== 'release').map(start);
  for (const proc of running) {
    void proc.exited.then(([code, signal]) => {
      // Expected exits (a reload, Ctrl-C) have taken it out of `running` first.
      if (stopping || !running.includes(proc)) return;
      console.error(
        `[dev] ${proc.name} exited (${String(signal ?? code)}); it restarts on the next change`,
      );
    });
  }
}

/** SIGTERM to each, as the platform sends it: workers finish or hand back their active jobs. */
async function stopRunning() {
  const stopped = running;
  running = [];
  const slow = setTimeout(() => {
    const left = stopped.filter((p) => p.child.exitCode === null && p.child.signalCode === null);
    if (left.length) {
      console.log(`[dev] waiting for ${left.map((p) => p.name).join(', ')} to finish active work`);
    }
  }, 1_000);
  for (const { child } of stopped) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  }
  await Promise.all(stopped.map((p) => p.exited));
  clearTimeout(slow);
}

let reloading: Promise<void> | undefined;
let pending: string[] = [];
/** One reload at a time; changes that arrive meanwhile make one more. */
function reload(paths: string[]) {
  pending.push(...paths);
  reloading ??= (async () => {
    while (pending.length && !stopping) {
      const why = [...new Set(pending)];
      pending = [];
      console.log(`[dev] ${why.join(', ')} changed: restarting`);
      await stopRunning();
      if (isStopping()) return; // Ctrl-C came while the old processes were shutting down
      try {
        if (why.includes(envPath)) env = readEnv();
        processes = readProcesses(env);
      } catch (error) {
        console.error(`[dev] ${(error as Error).message}; fix it and save to start again`);
        continue;
      }
      if (!why.includes(procfilePath) || (await release())) startAll();
    }
  })().finally(() => {
    reloading = undefined;
  });
}

async function stopAll(code: number) {
  if (stopping) return;
  stopping = true;
  await watcher.close();
  await reloading;
  await stopRunning();
  if (redis.child) {
    redis.child.kill('SIGTERM');
    await once(redis.child, 'exit');
    console.log('[dev] stopped redis-server');
  }
  await postgres?.stop();
  process.exit(code);
}

const watcher = watchSources([procfilePath, envPath], reload);
// Ctrl-C reaches the children too (same process group); they shut down on their own.
process.on('SIGINT', () => void stopAll(0));
process.on('SIGTERM', () => void stopAll(0));
if (!(await release())) await stopAll(1);
startAll();
await watcher.ready;
console.log(`[dev] watching ${WATCHED.join('/, ')}/, ${procfilePath} and ${envPath} for changes`);
