// The worker processes of the no-op suites (e2e, pickup, soak): bench/noop-worker.ts in its
// three modes, and Celery workers (bench/celery_noop.py) with their producer. Each is started
// with an IPC channel or a pipe, stopped with SIGTERM, and registered for clean-up.
import { fork, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { loader, onCleanup, root, script } from './common.js';
import { wallClock, type FromWorker, type ToWorker, type WorkerMode } from './noop.js';

const PYTHON = '/usr/bin/python3'; // Debian's, where apt puts python3-celery

/** SIGTERM, then SIGKILL after `graceMs`; the exit code. */
async function stop(child: ChildProcess, graceMs = 15_000): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
  const exited = once(child, 'exit') as Promise<[number | null]>;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  const [code] = await exited;
  clearTimeout(timer);
  return code;
}

export interface Consumer {
  readonly name: string;
  readonly pid: number;
  /** Resolves with the wallClock() at which the worker had run `count` more jobs. */
  expect(count: number): Promise<number>;
  /** RSS of the worker's processes (a prefork pool's children too), bytes. */
  rss(): Promise<number>;
  stop(): Promise<number | null>;
}

export interface NoopWorker extends Consumer {
  /** Pickup latencies (ms) since the last call, as the handler saw them. */
  latencies(): Promise<number[]>;
  /** Jobs run since the last `expect` (or since the start). */
  counted(): Promise<number>;
}

/**
 * Forks bench/noop-worker.ts. `stdout` is where an offload worker's JSON log goes (a file
 * descriptor, as to a log drain) or 'ignore'.
 */
export async function startNoopWorker(
  name: string,
  mode: WorkerMode,
  env: { url: string; concurrency: number; prefix?: string; queue?: string },
  stdout: number | 'ignore' = 'ignore',
  /** Writes a V8 CPU profile of the worker into this directory when it exits. */
  cpuProf?: string,
  /** More for the worker: node flags (a preload) and environment (OTEL_* variables). */
  extra: { execArgv?: readonly string[]; env?: Record<string, string> } = {},
): Promise<NoopWorker> {
  const child = fork(script('bench/noop-worker.ts'), [], {
    execArgv: [
      ...loader,
      ...(extra.execArgv ?? []),
      ...(cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${cpuProf}`] : []),
    ],
    env: {
      ...extra.env,
      ...process.env,
      NODE_ENV: 'production',
      BENCH_REDIS_URL: env.url,
      BENCH_MODE: mode,
      BENCH_CONCURRENCY: String(env.concurrency),
      ...(env.prefix ? { BENCH_PREFIX: env.prefix } : {}),
      ...(env.queue ? { BENCH_QUEUE: env.queue } : {}),
    },
    stdio: ['ignore', stdout, 'inherit', 'ipc'],
  });
  onCleanup(async () => {
    await stop(child);
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error(`${name}: no pid`);
  const next = <T extends FromWorker['type']>(type: T) =>
    new Promise<Extract<FromWorker, { type: T }>>((resolve, reject) => {
      const onMessage = (message: FromWorker) => {
        if (message.type !== type) return;
        child.off('message', onMessage);
        child.off('exit', onExit);
        resolve(message as Extract<FromWorker, { type: T }>);
      };
      const onExit = (code: number | null) => {
        child.off('message', onMessage);
        reject(new Error(`${name} exited (${String(code)}) while the bench waited for ${type}`));
      };
      child.on('message', onMessage);
      child.once('exit', onExit);
    });
  const tell = (message: ToWorker) => child.send(message);
  await next('ready');
  return {
    name,
    pid,
    async expect(count) {
      const drained = next('drained');
      tell({ type: 'expect', count });
      return (await drained).at;
    },
    async latencies() {
      const reply = next('latencies');
      tell({ type: 'latencies' });
      return (await reply).values;
    },
    async counted() {
      const reply = next('counted');
      tell({ type: 'counted' });
      return (await reply).count;
    },
    rss: () => treeRss(pid),
    stop: () => stop(child),
  };
}

// --- Celery --------------------------------------------------------------------------------------

/**
 * Celery's version when Debian's python3-celery and python3-redis can be imported; if not, as
 * root, it tries `apt-get install` once. A string saying why not otherwise: never a number.
 */
export function celery(): { version: string } | { missing: string } {
  const probe = () =>
    spawnSync(PYTHON, ['-c', 'import celery, redis; print(celery.__version__)'], {
      encoding: 'utf8',
    });
  let found = probe();
  if (found.status !== 0 && process.getuid?.() === 0) {
    console.log('installing python3-celery and python3-redis with apt-get…');
    spawnSync('apt-get', ['update'], { stdio: 'ignore' });
    spawnSync('apt-get', ['install', '-y', 'python3-celery', 'python3-redis'], {
      stdio: 'ignore',
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });
    found = probe();
  }
  return found.status === 0
    ? { version: found.stdout.trim() }
    : {
        missing:
          `Celery could not be imported by ${PYTHON} (python3-celery, python3-redis not ` +
          `installed${process.getuid?.() === 0 ? ', and apt-get install failed' : ', and this is not root'})`,
      };
}

/**
 * A Celery worker (`celery -A celery_noop worker`, INFO logging as its docs run it, no
 * heartbeat/gossip/mingle chatter) consuming `queue`; counts the "succeeded" lines it logs.
 */
export async function startCelery(
  name: string,
  env: { url: string; pool: 'prefork' | 'threads'; concurrency: number; queue: string },
): Promise<Consumer> {
  const child = spawn(
    PYTHON,
    [
      '-m',
      'celery',
      '-A',
      'celery_noop',
      'worker',
      '-Q',
      env.queue,
      '--pool',
      env.pool,
      '-c',
      String(env.concurrency),
      '-l',
      'INFO',
      '--without-heartbeat',
      '--without-gossip',
      '--without-mingle',
      '-n',
      `${name}@bench`,
    ],
    {
      cwd: root('bench'),
      env: { ...process.env, BENCH_REDIS_URL: env.url, PYTHONUNBUFFERED: '1' },
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  onCleanup(async () => {
    await stop(child, 10_000);
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error(`${name}: no pid`);
  let succeeded = 0;
  let target = Infinity;
  let onTarget: ((at: number) => void) | undefined;
  const stderr = child.stderr;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} not ready in 60 s`)), 60_000);
    child.once('exit', (code) => reject(new Error(`${name} exited (${String(code)})`)));
    createInterface({ input: stderr }).on('line', (line) => {
      if (line.includes('] succeeded in ')) {
        succeeded += 1;
        if (succeeded === target) onTarget?.(wallClock());
      } else if (line.includes(' ready.')) {
        clearTimeout(timer);
        resolve();
      } else if (/ERROR|CRITICAL|Traceback/.test(line)) {
        console.error(`${name}: ${line}`);
      }
    });
  });
  return {
    name,
    pid,
    expect(count) {
      succeeded = 0;
      target = count;
      return new Promise((resolve) => (onTarget = resolve));
    },
    rss: () => treeRss(pid),
    stop: () => stop(child, 10_000),
  };
}

/** bench/celery_noop.py as a producer: `fill(queue, n)` publishes n noop tasks to `queue`. */
export function startCeleryProducer(url: string): {
  fill(queue: string, count: number): Promise<void>;
} {
  const child = spawn(PYTHON, ['celery_noop.py'], {
    cwd: root('bench'),
    env: { ...process.env, BENCH_REDIS_URL: url, PYTHONUNBUFFERED: '1' },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  onCleanup(async () => {
    child.stdin.end();
    await stop(child, 5_000);
  });
  const lines: AsyncIterator<string, undefined> = createInterface({ input: child.stdout })[
    Symbol.asyncIterator
  ]();
  return {
    async fill(queue, count) {
      child.stdin.write(`fill ${queue} ${count}\n`);
      const { value, done } = await lines.next();
      if (done || value !== 'ok') throw new Error(`celery producer: ${String(value)}`);
    },
  };
}

/** VmRSS of a process and all its descendants (a prefork pool), bytes; Linux only. */
export async function treeRss(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const own = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? 0) * 1024;
  const children = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '');
  const ids = children.split(' ').filter(Boolean).map(Number);
  return own + (await Promise.all(ids.map(treeRss))).reduce((a, b) => a + b, 0);
}
