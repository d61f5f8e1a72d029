// The reports suite: seconds for a 2,000-card report through the real workflow (render-cards
// chunks on the `reports` queue, then zip-report, then send-email on `mail`) with one worker
// process and with two, against a bare pdfkit loop rendering the same cards in this process.
// Run by bench/run.ts (`--suite reports`).
import { fork } from 'node:child_process';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import os from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { QueueEvents } from 'bullmq';
import type { Redis } from 'ioredis';
import yauzl from 'yauzl';
import { renderCards, sendEmail, zipReport } from '../jobs/index.js';
import { connectOffloader, quit } from '../src/process/boot.js';
import { loadConfig } from '../src/config.js';
import { closeDeps, createDeps } from '../src/deps.js';
import { createLogger } from '../src/logger.js';
import { child, type Offloader } from '../src/offload/index.js';
import { renderCard } from '../src/reports/card.js';
import { sampleRoster } from '../src/reports/roster.js';
import { cardFileName, rosterKey, zipKey } from '../src/reports/store.js';
import { renderAll, type BareReply, type BareTask } from './bare-cards.js';
import {
  fixed,
  header,
  median,
  MIN_ROUNDS_TO_WRITE,
  onCleanup,
  start,
  suiteRedis,
  version,
  writeSection,
  inRoundOrder,
  loader,
  script,
  command,
} from './common.js';
import {
  Completions,
  cpuOf,
  startWorker,
  threadCpuOf,
  stopWorker,
  type LogEntry,
  type WorkerProcess,
} from './worker-process.js';

const STUDENTS = 2_000;
const TARGET_BARE = 0.8; // 1 worker cards/s ≥ 0.8 × bare
const TARGET_SCALING = 1.6; // 2 workers cards/s ≥ 1.6 × 1 worker
/** The route's default title (routes/reports.ts). */
const TITLE = 'Student ID';
const EMAIL = 'registrar@example.edu';
/** src/reports/render-pool.ts lets idle render threads go after 30 s. */
const POOL_IDLE_TIMEOUT_S = 30;

export interface ReportOptions {
  rounds: number;
  /** WORKER_CONCURRENCY of the worker processes (the app's default unless asked). */
  concurrency: number;
  /** REPORT_CHUNK_SIZE: students per render-cards chunk (the app's default unless asked). */
  chunkSize: number;
  /** Writes V8 CPU profiles of the worker processes, and of one extra bare pass, into DIR. */
  cpuProf?: string | undefined;
}

type Variant = 'bare' | 'bare ×2' | '1 worker' | '2 workers';
type WorkerVariant = '1 worker' | '2 workers';
const VARIANTS: readonly Variant[] = ['bare', 'bare ×2', '1 worker', '2 workers'];

/**
 * A worker report's seconds, end to end: enqueue → first chunk started (pickup) → last chunk
 * completed (render) → zip-report started (handoff) → zip-report completed (zip) → the bench
 * saw its `completed` event (notice).
 */
interface Phases {
  pickup: number;
  render: number;
  handoff: number;
  zip: number;
  notice: number;
}
const PHASES = ['pickup', 'render', 'handoff', 'zip', 'notice'] as const;

interface Round {
  round: number;
  variant: Variant;
  seconds: number;
  cards: number;
  /** CPU time of the working process(es): the bench process for bare, else the workers. */
  cpuMs: number;
  /** CPU ms of the working process(es) by thread (see ThreadCpu). */
  threads: ThreadCpu;
  /** Cores busy over the round: the working process(es), redis-server, the whole machine. */
  cores: number;
  redisCores?: number;
  machineCores?: number;
  /** Worker variants: where the report's seconds went, from the workers' job log lines. */
  phases?: Phases;
  /** 2 workers: seconds between one worker's last chunk and the other's (one sat idle). */
  spread?: number;
  /** Worker variants: render-cards chunks each worker process ran. */
  chunks?: number[];
  /** Worker variants: seconds since the variant's previous report (its render threads idled). */
  idle?: number;
}

// --- CPU accounting beyond the workers ----------------------------------------------------------

/**
 * A round's CPU ms by thread, summed over the working processes. `render`: the thread that
 * renders (bare: the main thread; a worker: its busiest thread besides main, the render thread
 * with REPORT_RENDER_THREADS=1). `main`: a worker's main thread (its event loop: jobs, zips,
 * Redis, storage); 0 for bare. `other`: the rest (V8's GC helpers, libuv's pool).
 */
interface ThreadCpu {
  render: number;
  main: number;
  other: number;
}
const THREAD_PARTS = ['render', 'main', 'other'] as const;

function threadSplit(
  pids: number[],
  before: Map<number, number>[],
  after: Map<number, number>[],
  renderOnMain: boolean,
): ThreadCpu {
  const split: ThreadCpu = { render: 0, main: 0, other: 0 };
  for (const [i, pid] of pids.entries()) {
    const deltas = [...(after[i] ?? new Map<number, number>())].map(
      ([tid, us]) => [tid, (us - (before[i]?.get(tid) ?? 0)) / 1000] as const,
    );
    const main = deltas.find(([tid]) => tid === pid)?.[1] ?? 0;
    const rest = deltas.filter(([tid]) => tid !== pid).map(([, ms]) => ms);
    const busiest = renderOnMain ? 0 : Math.max(0, ...rest);
    split.render += renderOnMain ? main : busiest;
    split.main += renderOnMain ? 0 : main;
    split.other += rest.reduce((sum, ms) => sum + ms, 0) - busiest;
  }
  return split;
}

/** Busy and total jiffies of the whole machine (Linux /proc/stat), or undefined elsewhere. */
async function machineTicks(): Promise<{ busy: number; total: number } | undefined> {
  try {
    const line = (await readFile('/proc/stat', 'utf8')).split('\n')[0] ?? '';
    // user nice system idle iowait irq softirq steal (guest time is inside user already)
    const ticks = line.trim().split(/\s+/).slice(1, 9).map(Number);
    const total = ticks.reduce((sum, n) => sum + n, 0);
    return { busy: total - (ticks[3] ?? 0) - (ticks[4] ?? 0), total };
  } catch {
    return undefined;
  }
}
const machineCores = (
  before: { busy: number; total: number } | undefined,
  after: { busy: number; total: number } | undefined,
) =>
  before && after && after.total > before.total
    ? ((after.busy - before.busy) / (after.total - before.total)) * os.cpus().length
    : undefined;

/** redis-server's CPU time so far, seconds (INFO cpu). */
async function redisCpu(connection: Redis): Promise<number> {
  const info = await connection.info('cpu');
  const field = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1]);
  return field('used_cpu_user') + field('used_cpu_sys');
}

const sha = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');

// --- Main ----------------------------------------------------------------------------------------

/** Runs the reports suite; true when the run is valid and both targets are met. */
export async function runReports(options: ReportOptions): Promise<boolean> {
  const { rounds: roundCount } = options;
  if (
    ![roundCount, options.concurrency, options.chunkSize].every(
      (n) => Number.isInteger(n) && n >= 1,
    )
  ) {
    throw new Error(
      'bad reports options: --rounds, --concurrency and --chunk-size are whole numbers ≥ 1',
    );
  }
  const suiteBegin = performance.now();
  const started = start();
  const { redis, dir } = await suiteRedis('reports');

  // Chunk size and concurrency: the app's defaults unless asked; one render thread per process.
  const defaults = loadConfig({});
  const byDefault = (value: number, fallback: number) =>
    value === fallback ? `${value} (default)` : `${value} (default ${fallback})`;
  const env = {
    REDIS_URL: redis.url,
    OFFLOAD_MODE: 'queue',
    STORAGE_DIR: join(dir, 'storage'),
    OUTBOX_DIR: join(dir, 'outbox'),
    SIGNING_SECRET: randomBytes(32).toString('base64url'),
    WORKER_QUEUES: 'reports,mail',
    WORKER_CONCURRENCY: String(options.concurrency),
    REPORT_CHUNK_SIZE: String(options.chunkSize),
    REPORT_RENDER_THREADS: '1',
    LOG_LEVEL: 'info',
  };
  // Each worker variant has its own queues (its own QUEUE_PREFIX), so both sets of workers stay
  // up for the whole run and only the variant being measured gets work.
  const PREFIX: Record<WorkerVariant, string> = {
    '1 worker': 'bench-1w',
    '2 workers': 'bench-2w',
  };
  const configOf = (prefix: string) =>
    loadConfig({ ...env, QUEUE_PREFIX: prefix, LOG_LEVEL: 'warn' });
  const config = configOf(PREFIX['1 worker']);
  const { REPORT_CHUNK_SIZE: chunkSize, WORKER_CONCURRENCY: concurrency } = config;
  const log = createLogger(config.LOG_LEVEL, 'bench');
  const deps = createDeps(config);
  onCleanup(() => closeDeps(deps));
  const issued = new Date().toISOString().slice(0, 10); // as the route sets it
  const task: BareTask = { students: STUDENTS, title: TITLE, issued };

  interface Side {
    offloader: Offloader;
    connection: Redis;
    reports: Completions;
    mail: Completions;
    workers: WorkerProcess[];
    /** `job started` / `job completed` log lines: which worker (index), job, when (epoch ms). */
    jobLog: { worker: number; msg: string; job: string; jobId: string; time: number }[];
    lastEnd?: number;
  }
  async function side(variant: WorkerVariant, workerCount: number): Promise<Side> {
    const prefix = PREFIX[variant];
    const { offloader, connection } = connectOffloader(configOf(prefix), log, deps);
    if (!connection) throw new Error('no redis connection');
    onCleanup(() => quit(connection));
    onCleanup(() => offloader.close());
    if (connection.status !== 'ready') await once(connection, 'ready');
    const completions = async (queue: string) => {
      const events = new QueueEvents(queue, {
        connection: { host: '127.0.0.1', port: redis.port },
        prefix,
      });
      onCleanup(() => events.close());
      const tracked = new Completions(events);
      await events.waitUntilReady();
      return tracked;
    };
    const s: Side = {
      offloader,
      connection,
      reports: await completions(zipReport.queue),
      mail: await completions(sendEmail.queue),
      workers: [],
      jobLog: [],
    };
    const workerEnv = { ...process.env, ...env, QUEUE_PREFIX: prefix, SMTP_URL: '' };
    for (let i = 0; i < workerCount; i++) {
      const onLog = (entry: LogEntry) => {
        const { msg, job, jobId, time } = entry;
        if (msg !== 'job started' && msg !== 'job completed') return;
        if (typeof job === 'string' && typeof jobId === 'string' && typeof time === 'number')
          s.jobLog.push({ worker: i, msg, job, jobId, time });
      };
      s.workers.push(
        await startWorker(
          { ...workerEnv, NODE_ENV: 'production' },
          { probe: false, cpuProf: options.cpuProf, onLog },
        ),
      );
    }
    return s;
  }
  const sides = { '1 worker': await side('1 worker', 1), '2 workers': await side('2 workers', 2) };
  console.log(
    `redis-server on ${redis.url}; worker pids ${sides['1 worker'].workers.map((w) => w.child.pid).join()} ` +
      `(1 worker) and ${sides['2 workers'].workers.map((w) => w.child.pid).join()} (2 workers), ` +
      `each WORKER_QUEUES=reports,mail, concurrency ${concurrency}, REPORT_RENDER_THREADS=1; ` +
      `${STUDENTS} students in chunks of ${chunkSize}`,
  );

  // --- bare: the pdfkit loop in this process ---
  /** Each card's SHA-256 by its name in the report zip, from the warm-up pass. */
  const expected = new Map<string, string>();
  async function bare(round: number): Promise<Round> {
    const cpu = process.cpuUsage();
    const threads0 = await threadCpuOf(process.pid);
    const redis0 = await redisCpu(sides['1 worker'].connection);
    const machine0 = await machineTicks();
    const begin = performance.now();
    let cards = 0;
    if (round === 0) {
      // The warm-up pass also keeps each card's hash, to check the workers' zips against.
      const options = { title: TITLE, issued: new Date(issued) };
      for (const s of sampleRoster(STUDENTS)) {
        const pdf = await renderCard(s, { ...options, code: s.id });
        expected.set(`id-cards/${cardFileName(s)}`, sha(pdf));
        cards += 1;
      }
    } else {
      cards = await renderAll(task);
    }
    const seconds = (performance.now() - begin) / 1000;
    const machine = machineCores(machine0, await machineTicks());
    const { user, system } = process.cpuUsage(cpu);
    const threads = threadSplit([process.pid], [threads0], [await threadCpuOf(process.pid)], true);
    const redisSeconds = (await redisCpu(sides['1 worker'].connection)) - redis0;
    return {
      round,
      variant: 'bare',
      seconds,
      cards,
      cpuMs: (user + system) / 1000,
      threads,
      cores: (user + system) / 1e6 / seconds,
      redisCores: redisSeconds / seconds,
      ...(machine !== undefined && { machineCores: machine }),
    };
  }

  // --- bare ×2: the same loop in two processes at once, what this machine gives two processes ---
  const bareProcesses = await Promise.all(
    [0, 1].map(async () => {
      const forked = fork(script('bench/bare-cards.ts'), [], {
        execArgv: [...loader],
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      });
      onCleanup(async () => {
        if (forked.exitCode !== null || forked.signalCode !== null) return;
        const exited = once(forked, 'exit');
        forked.kill('SIGTERM');
        await exited;
      });
      await once(forked, 'spawn');
      return forked;
    }),
  );
  async function bareTwice(round: number): Promise<Round> {
    const barePids = bareProcesses.map((forked) => forked.pid ?? NaN);
    const threads0 = await Promise.all(barePids.map((pid) => threadCpuOf(pid)));
    const redis0 = await redisCpu(sides['1 worker'].connection);
    const machine0 = await machineTicks();
    const begin = performance.now();
    const replies = await Promise.all(
      bareProcesses.map(async (forked) => {
        const reply = once(forked, 'message') as Promise<[BareReply]>;
        forked.send(task);
        return (await reply)[0];
      }),
    );
    const seconds = (performance.now() - begin) / 1000;
    const machine = machineCores(machine0, await machineTicks());
    const redisSeconds = (await redisCpu(sides['1 worker'].connection)) - redis0;
    const cpuUs = replies.reduce((sum, r) => sum + r.cpu, 0);
    const threads1 = await Promise.all(barePids.map((pid) => threadCpuOf(pid)));
    return {
      round,
      variant: 'bare ×2',
      seconds,
      cards: replies.reduce((sum, r) => sum + r.cards, 0),
      cpuMs: cpuUs / 1000,
      threads: threadSplit(barePids, threads0, threads1, true),
      cores: cpuUs / 1e6 / seconds,
      redisCores: redisSeconds / seconds,
      ...(machine !== undefined && { machineCores: machine }),
    };
  }

  // --- 1 worker / 2 workers: the report workflow, built as POST /reports builds it ---
  let identical = 0;
  let compared = 0;
  let mails = 0;
  async function report(variant: WorkerVariant, round: number): Promise<Round> {
    const s = sides[variant];
    const children = s.workers.map((w) => w.child);
    // routes/reports.ts: the chunks, the stored roster, then one enqueue of the workflow.
    const students = sampleRoster(STUDENTS);
    const reportId = randomUUID();
    const chunks = [];
    for (let from = 0; from < students.length; from += chunkSize) {
      const to = Math.min(from + chunkSize, students.length);
      chunks.push(child(renderCards, { reportId, title: TITLE, issued, from, to }));
    }
    await deps.storage.put(rosterKey(reportId), Readable.from([JSON.stringify(students)]));

    const failedBefore = s.workers.reduce((sum, w) => sum + w.failedAttempts, 0);
    const pids = children.map((c) => c.pid ?? NaN);
    const before = await Promise.all(pids.map((pid) => cpuOf(pid)));
    const threads0 = await Promise.all(pids.map((pid) => threadCpuOf(pid)));
    const redis0 = await redisCpu(s.connection);
    const machine0 = await machineTicks();
    const begin = performance.now();
    const beginEpoch = Date.now();
    const idle = s.lastEnd === undefined ? undefined : (begin - s.lastEnd) / 1000;
    const accepted = await s.offloader.enqueue(
      zipReport,
      { reportId, email: EMAIL, issued, chunkSize },
      { children: chunks, progressTotal: students.length },
    );
    const { end } = await s.reports.all([accepted.id], children);
    const machine = machineCores(machine0, await machineTicks());
    const redisSeconds = (await redisCpu(s.connection)) - redis0;
    const after = await Promise.all(pids.map((pid) => cpuOf(pid)));
    const threads = threadSplit(
      pids,
      threads0,
      await Promise.all(pids.map((pid) => threadCpuOf(pid))),
      false,
    );
    const seconds = (end - begin) / 1000;
    s.lastEnd = end;

    // Not timed: the mail, the zip's cards against the bare loop's, no failed attempt.
    const result = s.reports.valueOf(accepted.id) as { cards?: number; mailJobId?: string };
    if (!result.mailJobId) throw new Error(`report ${accepted.id} returned no mail job`);
    await s.mail.all([result.mailJobId], children);
    if (!existsSync(join(env.OUTBOX_DIR, `${result.mailJobId}.eml`))) {
      throw new Error(`report ${accepted.id}: no mail in the outbox`);
    }
    mails += 1;
    const failed = s.workers.reduce((sum, w) => sum + w.failedAttempts, 0) - failedBefore;
    if (failed > 0) throw new Error(`${variant}: ${failed} failed job attempts in this report`);
    const zip = await checkZip(join(env.STORAGE_DIR, zipKey(reportId)));
    compared += zip.entries;
    identical += zip.identical;
    if (zip.entries !== STUDENTS || zip.identical !== STUDENTS || result.cards !== STUDENTS) {
      throw new Error(
        `${variant}: the report has ${zip.entries} cards (${zip.identical} identical to the ` +
          `bare loop's); it says ${String(result.cards)}; ${STUDENTS} expected`,
      );
    }
    await rm(join(env.STORAGE_DIR, 'reports', reportId), { recursive: true, force: true });

    // From the workers' log lines (their clocks are this one's): the phases, who ran which chunk.
    const mine = s.jobLog.filter(
      (c) => c.jobId === accepted.id || c.jobId.startsWith(`${accepted.id}.`),
    );
    const at = (job: string, msg: string) =>
      mine.filter((c) => c.job === job && c.msg === `job ${msg}`).map((c) => c.time);
    const chunkStarts = at(renderCards.name, 'started');
    const chunkEnds = at(renderCards.name, 'completed');
    const [zipStart] = at(zipReport.name, 'started');
    const [zipEnd] = at(zipReport.name, 'completed');
    const endEpoch = beginEpoch + (end - begin);
    const phases =
      zipStart !== undefined && zipEnd !== undefined && chunkEnds.length === chunks.length
        ? {
            pickup: (Math.min(...chunkStarts) - beginEpoch) / 1000,
            render: (Math.max(...chunkEnds) - Math.min(...chunkStarts)) / 1000,
            handoff: (zipStart - Math.max(...chunkEnds)) / 1000,
            zip: (zipEnd - zipStart) / 1000,
            notice: (endEpoch - zipEnd) / 1000,
          }
        : undefined;
    const perWorker = s.workers.map(
      (_, i) =>
        mine.filter(
          (c) => c.job === renderCards.name && c.msg === 'job completed' && c.worker === i,
        ).length,
    );
    const finished = s.workers.map((_, i) =>
      Math.max(
        ...mine
          .filter((c) => c.job === renderCards.name && c.msg === 'job completed' && c.worker === i)
          .map((c) => c.time),
      ),
    );
    const spread =
      finished.length > 1 ? (Math.max(...finished) - Math.min(...finished)) / 1000 : undefined;
    const cpuUs = after.reduce((sum, a, i) => sum + a - (before[i] ?? NaN), 0);
    return {
      round,
      variant,
      seconds,
      cards: result.cards,
      cpuMs: cpuUs / 1000,
      threads,
      cores: cpuUs / 1e6 / seconds,
      redisCores: redisSeconds / seconds,
      ...(machine !== undefined && { machineCores: machine }),
      ...(phases && { phases }),
      ...(spread !== undefined && { spread }),
      chunks: perWorker,
      ...(idle !== undefined && { idle }),
    };
  }

  /** Counts the zip's entries and those byte-identical to the bare loop's card of that name. */
  async function checkZip(path: string): Promise<{ entries: number; identical: number }> {
    const zip = await yauzl.fromBufferPromise(await readFile(path), { lazyEntries: true });
    let entries = 0;
    let same = 0;
    await new Promise<void>((resolve, reject) => {
      zip.on('entry', (entry: yauzl.Entry) => {
        entries += 1;
        zip
          .openReadStreamPromise(entry)
          .then((stream) => buffer(stream))
          .then((data) => {
            if (expected.get(entry.fileName) === sha(data)) same += 1;
            zip.readEntry();
          }, reject);
      });
      zip.once('end', resolve);
      zip.once('error', reject);
      zip.readEntry();
    });
    return { entries, identical: same };
  }

  const run = (variant: Variant, round: number) =>
    variant === 'bare'
      ? bare(round)
      : variant === 'bare ×2'
        ? bareTwice(round)
        : report(variant, round);
  const show = (r: Round) =>
    console.log(
      `${r.round ? `round ${r.round}` : 'warm-up'}  ${r.variant.padEnd(9)} ` +
        `${fixed(r.seconds).padStart(6)} s  ${fixed(r.cards / r.seconds, 0).padStart(4)} cards/s  ` +
        `cpu ${fixed(r.cpuMs / r.cards, 2)} ms/card (${THREAD_PARTS.map((t) => `${t} ${fixed(r.threads[t] / r.cards, 2)}`).join(', ')})  cores: work ${fixed(r.cores)}, ` +
        `redis ${fixed(r.redisCores ?? NaN)}, machine ${fixed(r.machineCores ?? NaN)}` +
        (r.phases
          ? `  s: ${PHASES.map((p) => `${p} ${fixed(r.phases?.[p] ?? NaN)}`).join(', ')}`
          : '') +
        (r.spread !== undefined ? `  finish spread ${fixed(r.spread)} s` : '') +
        (r.chunks ? `  chunks ${r.chunks.join('+')}` : '') +
        (r.idle !== undefined ? `  idle before ${fixed(r.idle, 1)} s` : ''),
    );

  // A warm-up report per variant (JIT, the render threads of every worker process, Redis), then
  // interleaved rounds. Render threads live 30 s idle; a round is far shorter, so every timed
  // report finds its variant's threads as warm as the others' (the "idle before" column).
  for (const variant of VARIANTS) show(await run(variant, 0));
  const rounds: Round[] = [];
  for (let round = 1; round <= roundCount; round++) {
    for (const variant of inRoundOrder(VARIANTS, round)) {
      const r = await run(variant, round);
      rounds.push(r);
      show(r);
    }
  }

  // Where the bare loop's time goes, on request: one more pass under the inspector's profiler.
  if (options.cpuProf) {
    const session = new Session();
    session.connect();
    await session.post('Profiler.enable');
    await session.post('Profiler.start');
    await bare(roundCount + 1);
    const { profile } = await session.post('Profiler.stop');
    session.disconnect();
    await writeFile(join(options.cpuProf, 'bench-bare.cpuprofile'), JSON.stringify(profile));
  }

  const stalled = Object.values(sides).reduce((n, s) => n + s.reports.stalled + s.mail.stalled, 0);
  const failedAttempts = Object.values(sides).reduce(
    (n, s) => n + s.workers.reduce((m, w) => m + w.failedAttempts, 0),
    0,
  );
  const exits: (number | null)[] = [];
  for (const s of Object.values(sides)) {
    for (const w of s.workers) exits.push(await stopWorker(w.child));
  }
  const suiteSeconds = (performance.now() - suiteBegin) / 1000;

  // --- Report ---
  const of = (variant: Variant) => rounds.filter((r) => r.variant === variant);
  const optional = (values: (number | undefined)[]) =>
    values.every((v) => v !== undefined) ? median(values) : NaN;
  const summarize = (mine: Round[]) => ({
    seconds: median(mine.map((r) => r.seconds)),
    cardsPerS: median(mine.map((r) => r.cards / r.seconds)),
    cpuMsPerCard: median(mine.map((r) => r.cpuMs / r.cards)),
    threads: Object.fromEntries(
      THREAD_PARTS.map((t) => [t, median(mine.map((r) => r.threads[t] / r.cards))]),
    ) as unknown as ThreadCpu,
    cores: median(mine.map((r) => r.cores)),
    redisCores: optional(mine.map((r) => r.redisCores)),
    machineCores: optional(mine.map((r) => r.machineCores)),
    spread: optional(mine.map((r) => r.spread)),
    phases: Object.fromEntries(
      PHASES.map((p) => [p, optional(mine.map((r) => r.phases?.[p]))]),
    ) as unknown as Phases,
  });
  const medians = Object.fromEntries(VARIANTS.map((v) => [v, summarize(of(v))])) as Record<
    Variant,
    ReturnType<typeof summarize>
  >;
  const ratio = (a: Variant, b: Variant, what: 'cardsPerS' | 'cpuMsPerCard' = 'cardsPerS') =>
    medians[a][what] / medians[b][what];
  const vsBare = ratio('1 worker', 'bare');
  const scaling = ratio('2 workers', '1 worker');
  const ceiling = ratio('bare ×2', 'bare');
  const okBare = vsBare >= TARGET_BARE;
  const okScaling = scaling >= TARGET_SCALING;
  const warm = rounds.every((r) => r.idle === undefined || r.idle < POOL_IDLE_TIMEOUT_S - 5);
  const valid =
    stalled === 0 &&
    failedAttempts === 0 &&
    exits.every((code) => code === 0) &&
    identical === compared &&
    warm &&
    rounds.every((r) => r.cards === (r.variant === 'bare ×2' ? 2 : 1) * STUDENTS);
  const pass = valid && okBare && okScaling;
  const chunkCount = Math.ceil(STUDENTS / chunkSize);
  const one = medians['1 worker'];
  const two = medians['2 workers'];
  /** The 1-worker report with its zip step taken out: what it would be were the zip free. */
  const withoutZip = (m: typeof one) => STUDENTS / (m.seconds - m.phases.zip);

  const paired = (a: Variant, b: Variant) =>
    rounds
      .filter((r) => r.variant === a)
      .map((r) => {
        const other = rounds.find((o) => o.round === r.round && o.variant === b);
        return other ? fixed(r.cards / r.seconds / (other.cards / other.seconds)) : 'n/a';
      })
      .join(', ');
  const row = (name: string, a: Variant, b: Variant, target?: number) =>
    `| ${name} | ${fixed(ratio(a, b))}× | ${fixed(ratio(a, b, 'cpuMsPerCard'))}× | ` +
    (target === undefined
      ? '— | (reference) |'
      : `cards/s ≥ ${target}× | ${ratio(a, b) >= target ? 'PASS' : 'FAIL'} |`);
  const summary = [
    '| variant | seconds | cards/s | CPU ms/card | cores busy (working processes) | redis-server cores | machine cores |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...VARIANTS.map((v) => {
      const m = medians[v];
      return (
        `| ${v} | ${fixed(m.seconds)} | ${fixed(m.cardsPerS, 0)} | ${fixed(m.cpuMsPerCard)} | ` +
        `${fixed(m.cores)} | ${fixed(m.redisCores)} | ${fixed(m.machineCores)} |`
      );
    }),
    '',
    'CPU ms per card by thread (medians; from /proc/<pid>/task): rendering = the thread that ' +
      'renders (bare: the main thread; a worker: its render thread); worker main = a worker ' +
      'process’s main thread (jobs, zips, Redis, storage); other = the remaining threads ' +
      '(V8’s GC helpers, libuv’s pool). With two worker processes on two cores, ' +
      'every thread’s CPU competes for the same cores; with one, main and other run beside the ' +
      'render thread on the idle core.',
    '',
    '| variant | rendering | worker main | other | all threads |',
    '| --- | ---: | ---: | ---: | ---: |',
    ...VARIANTS.map((v) => {
      const { threads } = medians[v];
      return (
        `| ${v} | ${THREAD_PARTS.map((t) => fixed(threads[t])).join(' | ')} | ` +
        `${fixed(THREAD_PARTS.reduce((sum, t) => sum + threads[t], 0))} |`
      );
    }),
    '',
    '| ratio | cards/s | CPU per card | target | verdict |',
    '| --- | ---: | ---: | --- | --- |',
    row('1 worker / bare', '1 worker', 'bare', TARGET_BARE),
    row('2 workers / 1 worker (speed-up)', '2 workers', '1 worker', TARGET_SCALING),
    row('bare ×2 / bare (this machine’s two-process ceiling)', 'bare ×2', 'bare'),
    row('2 workers / bare ×2', '2 workers', 'bare ×2'),
    '',
    `Round by round (each round's variants against each other): 1 worker / bare ` +
      `${paired('1 worker', 'bare')}; 2 workers / 1 worker ${paired('2 workers', '1 worker')}; ` +
      `bare ×2 / bare ${paired('bare ×2', 'bare')}.`,
    '',
    'Where a worker report’s seconds go (medians; from the workers’ `job started` / `job ' +
      'completed` log lines): pickup = enqueue → first chunk started; render = first chunk ' +
      'started → last chunk completed; handoff = → zip-report started; zip = the zip-report ' +
      'job (serial: one process, after the last chunk); notice = → the bench saw `completed`. ' +
      'Render cards/s = 2,000 / render. Finish spread: how long before the other one the ' +
      'first worker process finished its chunks (and sat idle).',
    '',
    '| variant | pickup | render | handoff | zip | notice | render cards/s | zip share | finish spread |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...(['1 worker', '2 workers'] as const).map((v) => {
      const { phases, seconds, spread } = medians[v];
      return (
        `| ${v} | ${PHASES.map((p) => `${fixed(phases[p])} s`).join(' | ')} | ` +
        `${fixed(STUDENTS / phases.render, 0)} | ${fixed((100 * phases.zip) / seconds, 0)} % | ` +
        `${Number.isNaN(spread) ? '—' : `${fixed(spread)} s`} |`
      );
    }),
    '',
    `Without their zip steps, 1 worker would be ${fixed(withoutZip(one) / medians.bare.cardsPerS)}× ` +
      `bare and 2 workers ${fixed(withoutZip(two) / withoutZip(one))}× 1 worker; the render ` +
      `phases alone: ${fixed(STUDENTS / one.phases.render / medians.bare.cardsPerS)}× bare and ` +
      `${fixed(one.phases.render / two.phases.render)}× between 1 and 2 workers, against the ` +
      `${fixed(ceiling)}× two bare loops get out of this machine.`,
    '',
    valid
      ? `Valid run: ${mails} reports of ${STUDENTS} cards (warm-ups included) completed with ` +
        `no failed attempt and no stalled job, each mailed (a .eml in the outbox); all ` +
        `${compared} cards in their zips byte-identical to the bare loop's; every timed report ` +
        `found its render threads warm (under ${POOL_IDLE_TIMEOUT_S - 5} s idle); the ` +
        `${exits.length} workers stopped cleanly on SIGTERM.`
      : `INVALID RUN: failed attempts ${failedAttempts}, stalled ${stalled}, identical cards ` +
        `${identical} of ${compared}, render threads warm ${warm ? 'yes' : 'no'}, worker exit ` +
        `codes ${exits.map(String).join(', ')}.`,
  ];
  const lines = [
    '## reports: a 2,000-card report through 1 and 2 worker processes vs a bare pdfkit loop',
    '',
    ...header(
      started,
      `pdfkit ${version('pdfkit')}, qrcode ${version('qrcode')}, piscina ${version('piscina')}, ` +
        `yauzl ${version('yauzl')} (reads chunk zips), bullmq ${version('bullmq')}, ioredis ${version('ioredis')}`,
    ),
    `- The report: \`sampleRoster(${STUDENTS})\` (deterministic students), title "${TITLE}" ` +
      `(the route's default), issued today; REPORT_CHUNK_SIZE ${byDefault(chunkSize, defaults.REPORT_CHUNK_SIZE)} → ` +
      `${chunkCount} render-cards chunks.`,
    '- `bare`: this process, one thread: `for (const s of sampleRoster(2000)) await ' +
      'renderCard(s, {title, issued, code: s.id})` (src/reports/card.ts, the function the ' +
      'render threads call; bench/bare-cards.ts). It only renders: no worker thread, no zip, ' +
      'no storage, no queue, no Redis, no mail; each PDF buffer is dropped. Its warm-up pass ' +
      'also hashes every card, which the workers’ zips are checked against.',
    '- `bare ×2` (reference, no target): the same loop in two child processes at once, ' +
      `started once (\`${command('bench/bare-cards.ts')}\`, IPC); seconds from sending both ` +
      'the task to the later reply, so 4,000 cards per round. What two processes get out of ' +
      'this machine, with nothing in between.',
    `- \`1 worker\` / \`2 workers\`: real worker processes (\`${command('workers/main.ts')}\`, ` +
      `WORKER_QUEUES=reports,mail, WORKER_CONCURRENCY=${byDefault(concurrency, defaults.WORKER_CONCURRENCY)}, ` +
      'REPORT_RENDER_THREADS=1 each, LOG_LEVEL=info, NODE_ENV=production, mail to files in a ' +
      'temp OUTBOX_DIR, files in a temp STORAGE_DIR), started once for the whole run; each ' +
      'variant has its own QUEUE_PREFIX, so the idle set gets no work. The report is built as ' +
      '`POST /reports` builds it (routes/reports.ts, in the bench process, not over HTTP): the ' +
      'roster stored at `reports/<id>/roster.json`, then one `offloader.enqueue(zipReport, ' +
      `{reportId, email, issued, chunkSize}, {children: ${chunkCount} × child(renderCards, ` +
      '{reportId, title, issued, from, to}), progressTotal})`. Timed from that enqueue to the ' +
      'zip-report job’s `completed` event (BullMQ QueueEvents): every chunk rendered on its ' +
      'worker’s render thread and stored as a chunk zip, then the one report zip written and ' +
      'the send-email job enqueued. Not timed: storing the roster before; the mail after ' +
      '(waited for before the next report); the checks.',
    '- CPU ms/card: CPU time of the working process(es) per card (the bench process for ' +
      '`bare`, the children for `bare ×2`, every thread of the worker processes from ' +
      '/proc/<pid>/stat). Cores busy: that CPU time over the wall time; redis-server’s from ' +
      '`INFO cpu`; machine: all processes (/proc/stat). A round with machine cores well above ' +
      'working + redis had company (the bench process only waits for events in the other ' +
      'variants’ rounds). Chunks: render-cards jobs per worker process. Idle before: time ' +
      'since the variant’s previous report; render threads stay up ' +
      `${POOL_IDLE_TIMEOUT_S} s idle (src/reports/render-pool.ts).`,
    `- Rounds: a warm-up per variant, then ${roundCount} interleaved rounds (` +
      `${VARIANTS.join(', ')}). The suite took ${fixed(suiteSeconds / 60, 1)} min.`,
    '',
    '### Summary (medians over rounds)',
    '',
    `Absolute numbers on a shared ${os.cpus().length}-core machine are noise; the ratios are the result.`,
    '',
    ...summary,
    '',
    '### Rounds',
    '',
    '| round | variant | seconds | cards/s | CPU ms/card | rendering / main / other ms/card | cores busy | redis cores | machine cores | render s | zip s | chunks per worker | finish spread s | idle before s |',
    '| ---: | --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |',
    ...rounds.map(
      (r) =>
        `| ${r.round} | ${r.variant} | ${fixed(r.seconds)} | ${fixed(r.cards / r.seconds, 0)} | ` +
        `${fixed(r.cpuMs / r.cards)} | ${THREAD_PARTS.map((t) => fixed(r.threads[t] / r.cards)).join(' / ')} | ` +
        `${fixed(r.cores)} | ${fixed(r.redisCores ?? NaN)} | ` +
        `${fixed(r.machineCores ?? NaN)} | ${r.phases ? fixed(r.phases.render) : '—'} | ` +
        `${r.phases ? fixed(r.phases.zip) : '—'} | ` +
        `${r.chunks ? r.chunks.join(' + ') : '—'} | ` +
        `${r.spread === undefined ? '—' : fixed(r.spread)} | ${r.idle === undefined ? '—' : fixed(r.idle, 1)} |`,
    ),
  ];
  console.log(`\n${summary.join('\n')}`);
  console.log(`\nsuite time ${fixed(suiteSeconds, 0)} s`);
  if (options.cpuProf) {
    console.log(
      `\nCPU profiles in ${options.cpuProf} (workers/main.ts per worker process, bench-bare ` +
        'for the bare loop); the profiled workers ran slower, so bench/RESULTS.md is left as it was',
    );
  } else if (roundCount >= MIN_ROUNDS_TO_WRITE) writeSection('reports', lines.join('\n'));
  else console.log(`\n(under ${MIN_ROUNDS_TO_WRITE} rounds: bench/RESULTS.md left as it was)`);
  return pass;
}
