// The Procfile's `web` and `worker` processes on a Redis, with a test SMTP server, under a
// queue prefix of their own: what the reliability tests (test/reliability/) crash, stop and load.
import { randomUUID } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { registry } from '../../src/process/boot.js';
import { eventually } from './app.js';
import { freePort } from './ports.js';
import { startProcess, type LogLine, type Proc } from './procfile.js';
import { startSmtp, type TestSmtp } from './smtp.js';

export interface Status {
  id: string;
  state: string;
  attempts: number;
  [key: string]: unknown;
}

export type Counts = Record<string, number>;

export interface Stack {
  base: string;
  env: Record<string, string>;
  smtp: TestSmtp;
  web?: Proc;
  workers: Proc[];
  startWeb(extra?: Record<string, string>): Promise<Proc>;
  /** Starts a worker and waits until it consumes its queues. */
  startWorker(extra?: Record<string, string>): Promise<Proc>;
  /** POST /signup; resolves with the HTTP status, the job id when accepted, and how long it took. */
  signup(email: string, name?: string): Promise<{ status: number; id?: string; ms: number }>;
  /** GET /jobs/:id. */
  status(id: string): Promise<Status>;
  /** Waits until every job in `ids` reads `completed`. */
  allCompleted(ids: Iterable<string>, timeoutMs: number): Promise<void>;
  /**
   * Job counts by state, summed over `queues` (default: every queue the app has; mind that
   * workers schedule `clean-storage` in `maintenance` when they start).
   */
  counts(queues?: readonly string[]): Promise<Counts>;
  close(): Promise<void>;
}

/** The ids of the jobs (of `job`, if given) that log lines with the message `msg` are about. */
export const logged = (lines: LogLine[], msg: string, job?: string): string[] =>
  lines
    .filter((l) => l.msg === msg && (job === undefined || l.job === job))
    .map((l) => String(l.jobId));

export async function startStack(redisUrl: string, env: Record<string, string> = {}) {
  const smtp = await startSmtp();
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), 'offload-stack-'));
  const prefix = `s${randomUUID().slice(0, 8)}`;
  const base = `http://127.0.0.1:${port}`;
  const stackEnv: Record<string, string> = {
    REDIS_URL: redisUrl,
    QUEUE_PREFIX: prefix,
    SMTP_URL: smtp.url,
    OUTBOX_DIR: join(dir, 'outbox'),
    STORAGE_DIR: join(dir, 'storage'),
    PORT: String(port),
    LOG_LEVEL: 'info',
    // Fast crash recovery: a dead worker's lock lapses in 5 s, and is looked for every 2 s.
    WORKER_LOCK_MS: '5000',
    WORKER_STALLED_INTERVAL_MS: '2000',
    ...env,
  };
  const inspectors = registry.queues.map(
    (name) => new Queue(name, { connection: { url: redisUrl }, prefix }),
  );
  for (const queue of inspectors) queue.on('error', () => undefined); // Redis may be stopped

  const stack: Stack = {
    base,
    env: stackEnv,
    smtp,
    workers: [],
    async startWeb(extra = {}) {
      const web = startProcess('web', { ...stackEnv, ...extra });
      stack.web = web;
      // Polled rather than read from the log, which may be quieter than info.
      await eventually(
        async () => {
          if (web.child.exitCode !== null) throw new Error(`web exited with ${web.child.exitCode}`);
          return (await fetch(`${base}/healthz`).catch(() => undefined))?.ok ? true : undefined;
        },
        30_000,
        'web answering /healthz',
      );
      return web;
    },
    async startWorker(extra = {}) {
      const worker = startProcess('worker', { ...stackEnv, ...extra });
      stack.workers.push(worker);
      await worker.waitForLog((l) => l.msg === 'consuming queues', 30_000);
      return worker;
    },
    async signup(email, name = 'Reli Able') {
      const started = performance.now();
      const res = await fetch(`${base}/signup`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email, name }),
      });
      const body = (await res.json()) as { id?: string };
      return { status: res.status, id: body.id, ms: performance.now() - started };
    },
    async status(id) {
      return (await (await fetch(`${base}/jobs/${id}`)).json()) as Status;
    },
    async allCompleted(ids, timeoutMs) {
      const pending = new Set(ids);
      await eventually(
        async () => {
          for (const id of [...pending]) {
            if ((await stack.status(id)).state === 'completed') pending.delete(id);
            else break; // checked again on the next round, with the rest
          }
          return pending.size === 0 ? true : undefined;
        },
        timeoutMs,
        `all jobs completed (${pending.size} not yet)`,
      );
    },
    async counts(queues = registry.queues) {
      const total: Counts = {};
      for (const queue of inspectors.filter((q) => queues.includes(q.name))) {
        for (const [state, n] of Object.entries(await queue.getJobCounts())) {
          total[state] = (total[state] ?? 0) + n;
        }
      }
      return total;
    },
    async close() {
      const procs = stack.web ? [stack.web, ...stack.workers] : stack.workers;
      await Promise.all(procs.map((p) => p.stop('SIGKILL')));
      await Promise.all(inspectors.map((queue) => queue.close()));
      await smtp.close();
    },
  };
  return stack;
}
