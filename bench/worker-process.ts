// The worker processes the thumbnails and reports suites measure: workers/main.ts as the Procfile
// runs it (compiled, or under tsx when the bench is), started with an IPC channel and its JSON logs piped here; what it reports
// (CPU time, event-loop lag via bench/worker-probe.ts, memory from /proc) and its jobs' ends
// (QueueEvents).
import { ChildProcess, fork, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { readdir, readFile } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import { QueueEvents } from 'bullmq';
import { connectOffloader, quit } from '../src/process/boot.js';
import type { Config } from '../src/config.js';
import type { Deps } from '../src/deps.js';
import type { Logger } from '../src/logger.js';
import { loader, onCleanup, script } from './common.js';
import type { ProbeReply } from './worker-probe.js';

const ROUND_TIMEOUT_MS = 300_000;

export interface WorkerProcess {
  child: ChildProcess;
  /** `job failed` log lines (every failed attempt, retried or not). */
  failedAttempts: number;
}

/** One of the worker's JSON log lines. */
export type LogEntry = Record<string, unknown> & { level?: number; msg?: string };

/**
 * Starts workers/main.ts with `env`; resolves once it logs "consuming queues". `onLog` sees
 * every JSON log line (e.g. each job's `job completed` with its `durationMs`).
 */
export async function startWorker(
  env: NodeJS.ProcessEnv,
  options: {
    /**
     * Preload bench/worker-probe.ts. Not for workers that start worker threads (the reports
     * suite): threads inherit the --import flags, and a thread does not load the .ts probe.
     */
    probe: boolean;
    cpuProf?: string | undefined;
    /** More node flags (the memory suite: the Procfile's). */
    nodeFlags?: readonly string[];
    onLog?: ((entry: LogEntry) => void) | undefined;
  },
): Promise<WorkerProcess> {
  const probe = pathToFileURL(script('bench/worker-probe.ts')).href;
  const child = fork(script('workers/main.ts'), [], {
    execArgv: [
      ...loader,
      ...(options.probe ? ['--import', probe] : []),
      ...(options.cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${options.cpuProf}`] : []),
      ...(options.nodeFlags ?? []),
    ],
    env,
    // The worker logs JSON to stdout, as to a log drain; the bench reads it.
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
  });
  onCleanup(async () => {
    await stopWorker(child);
  });
  const worker: WorkerProcess = { child, failedAttempts: 0 };
  const stdout = child.stdout;
  if (!stdout) throw new Error('no worker stdout');
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the worker did not start in 60 s')), 60_000);
    child.once('exit', (code, signal) => {
      reject(new Error(`the worker exited (${code ?? signal}) before consuming`));
    });
    createInterface({ input: stdout }).on('line', (line) => {
      let entry: LogEntry;
      try {
        entry = JSON.parse(line) as LogEntry;
      } catch {
        console.log(`worker: ${line}`);
        return;
      }
      if (entry.msg === 'consuming queues') {
        clearTimeout(timer);
        resolve();
      }
      if (entry.msg === 'job failed') worker.failedAttempts += 1;
      if ((entry.level ?? 0) >= 40) console.error(`worker: ${line}`);
      options.onLog?.(entry);
    });
  });
  return worker;
}

/** SIGTERM, as the platform stops it; the exit code (0 = a clean shutdown). */
export async function stopWorker(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  const [code] = await exited;
  clearTimeout(timer);
  return code;
}

export async function probe(child: ChildProcess): Promise<ProbeReply> {
  const reply = once(child, 'message');
  child.send('probe');
  return (await reply)[0] as ProbeReply;
}

/** VmRSS and VmHWM (peak RSS) of a process, in bytes. */
export async function memoryOf(pid: number): Promise<{ rss: number; hwm: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const bytes = (field: string) =>
    Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
  return { rss: bytes('VmRSS'), hwm: bytes('VmHWM') };
}

const CLOCK_TICKS = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout) || 100;

/**
 * CPU time of a process so far, µs (user + system, every thread: a worker's render threads
 * too), from /proc/<pid>/stat (Linux only), for workers started without the probe.
 */
export async function cpuOf(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // The fields after the command name, which is in parentheses: utime and stime are 14 and 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS) * 1e6;
}

/**
 * CPU time of each thread of a process so far, µs by thread id, from /proc/<pid>/task (Linux
 * only): which thread did the work (Node 20 names every thread "node", so by id: the main
 * thread's id is the pid).
 */
export async function threadCpuOf(pid: number): Promise<Map<number, number>> {
  const threads = new Map<number, number>();
  for (const tid of await readdir(`/proc/${pid}/task`)) {
    // A thread can end between the listing and the read.
    const stat = await readFile(`/proc/${pid}/task/${tid}/stat`, 'utf8').catch(() => undefined);
    if (stat === undefined) continue;
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    threads.set(Number(tid), ((Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS) * 1e6);
  }
  return threads;
}

type Outcome = { at: number; thumbnails: number; value: unknown } | { failed: string };

/** Every job's end on one queue, as QueueEvents reports it, and the stalled jobs. */
export class Completions {
  stalled = 0;
  private readonly outcomes = new Map<string, Outcome>();
  private wake: (() => void) | undefined;

  constructor(events: QueueEvents) {
    events.on('completed', ({ jobId, returnvalue }) => {
      const value: unknown =
        typeof returnvalue === 'string' ? JSON.parse(returnvalue) : (returnvalue as unknown);
      const made = (value as { thumbnails?: unknown[] } | null)?.thumbnails?.length ?? 0;
      this.settle(jobId, { at: performance.now(), thumbnails: made, value });
    });
    events.on('failed', ({ jobId, failedReason }) => {
      this.settle(jobId, { failed: failedReason });
    });
    events.on('stalled', () => {
      this.stalled += 1;
    });
  }

  private settle(id: string, outcome: Outcome) {
    this.outcomes.set(id, outcome);
    this.wake?.();
  }

  /** What a completed job returned (undefined until it completed). */
  valueOf(id: string): unknown {
    const outcome = this.outcomes.get(id);
    return outcome && 'value' in outcome ? outcome.value : undefined;
  }

  /**
   * When the last of `ids` completed (performance.now()), and the thumbnails made; throws when
   * one failed or a worker exited.
   */
  async all(
    ids: string[],
    worker: ChildProcess | readonly ChildProcess[],
  ): Promise<{ end: number; thumbnails: number }> {
    const workers = worker instanceof ChildProcess ? [worker] : worker;
    const deadline = performance.now() + ROUND_TIMEOUT_MS;
    for (;;) {
      const outcomes = ids.map((id) => this.outcomes.get(id));
      for (const [i, outcome] of outcomes.entries()) {
        if (outcome && 'failed' in outcome) {
          throw new Error(`job ${ids[i]} failed: ${outcome.failed}`);
        }
      }
      const done = outcomes.filter(
        (o): o is Extract<Outcome, { at: number }> => o !== undefined && 'at' in o,
      );
      if (done.length === ids.length) {
        return {
          end: Math.max(...done.map((o) => o.at)),
          thumbnails: done.reduce((sum, o) => sum + o.thumbnails, 0),
        };
      }
      if (workers.some((w) => w.exitCode !== null || w.signalCode !== null)) {
        throw new Error('a worker exited during the round');
      }
      if (performance.now() > deadline) {
        throw new Error(`${ids.length - done.length} of ${ids.length} jobs not done in time`);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 1_000);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }
}

/**
 * The bench's producer side for one queue, wired as src/web.ts wires it (the offloader on its
 * fail-fast connection), and the Completions of that queue's jobs; all closed at clean-up.
 */
export async function producerFor(
  config: Config,
  log: Logger,
  deps: Deps,
  redisPort: number,
  queue: string,
) {
  const { offloader, connection } = connectOffloader(config, log, deps);
  onCleanup(() => quit(connection));
  onCleanup(() => offloader.close());
  if (connection && connection.status !== 'ready') await once(connection, 'ready');
  return { offloader, completions: await completionsOf(queue, redisPort, config.QUEUE_PREFIX) };
}

/** The Completions of one queue's jobs, from their own QueueEvents; closed at clean-up. */
export async function completionsOf(
  queue: string,
  redisPort: number,
  prefix: string,
): Promise<Completions> {
  const events = new QueueEvents(queue, {
    connection: { host: '127.0.0.1', port: redisPort },
    prefix,
  });
  onCleanup(() => events.close());
  const completions = new Completions(events);
  await events.waitUntilReady();
  return completions;
}
