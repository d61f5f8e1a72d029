// The memory suite: does a process fit a 512 MB dyno at the default settings under its worst
// allowed load? Peak RSS (VmHWM) of a worker process, and of an `embedded` web process (web and
// worker in one), while every media slot holds a 40 MP image (IMAGE_MAX_PIXELS) and a
// 5,000-card report (REPORT_MAX_STUDENTS) renders. Run by bench/run.ts
// (`npm run bench -- --suite memory`); not part of `npm test`.
import { fork, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import sharp from 'sharp';
import { loadConfig } from '../src/config.js';
import { freePort } from '../test/harness/ports.js';
import {
  command,
  fixed,
  header,
  loader,
  mb,
  onCleanup,
  procfileNodeFlags,
  script,
  start,
  suiteRedis,
  version,
  writeSection,
} from './common.js';
import { memoryOf, startWorker, stopWorker } from './worker-process.js';

/** The goal: 450 MiB, leaving a 512 MB dyno room for the runtime's own slack. */
const GOAL = 450 * 2 ** 20;
const JOB_TIMEOUT_MS = 600_000;

const defaults = loadConfig({});
const SIDE = Math.floor(Math.sqrt(defaults.IMAGE_MAX_PIXELS / 1.6));
const BIG = { width: Math.floor(SIDE * 1.6), height: SIDE }; // 8000 × 5000 at 40 MP
const MEDIA_SLOTS = defaults.QUEUE_CONCURRENCY.media ?? defaults.WORKER_CONCURRENCY;
const STUDENTS = defaults.REPORT_MAX_STUDENTS;

/** A picture with the most pixels the limit allows, made in a second: noise in 8×8 blocks. */
async function bigImage(format: 'jpeg' | 'png'): Promise<Buffer> {
  const small = { width: BIG.width / 8, height: BIG.height / 8, channels: 3 } as const;
  const noise = { type: 'gaussian', mean: 128, sigma: 60 } as const;
  const raw = await sharp({ create: { ...small, noise, background: 'black' } })
    .raw()
    .toBuffer();
  const image = sharp(raw, { raw: small }).resize(BIG.width, BIG.height, { kernel: 'nearest' });
  // EXIF orientation 6 on the JPEG: autoOrient then rotates it, the costlier path.
  return format === 'jpeg'
    ? image.withMetadata({ orientation: 6 }).jpeg().toBuffer()
    : image.png().toBuffer();
}

interface Load {
  name: string;
  png: number;
  jpeg: number;
  report: boolean;
}

const LOADS: readonly Load[] = [
  { name: `${MEDIA_SLOTS} × PNG 40 MP`, png: MEDIA_SLOTS, jpeg: 0, report: false },
  { name: `${MEDIA_SLOTS} × JPEG 40 MP (orientation 6)`, png: 0, jpeg: MEDIA_SLOTS, report: false },
  { name: `${STUDENTS}-card report`, png: 0, jpeg: 0, report: true },
  {
    name: `all at once: ${MEDIA_SLOTS} × PNG + ${MEDIA_SLOTS} × JPEG + ${STUDENTS}-card report`,
    png: MEDIA_SLOTS,
    jpeg: MEDIA_SLOTS,
    report: true,
  },
];

interface Row {
  mode: 'worker' | 'embedded';
  load: string;
  idle: number;
  peak: number;
  webPeak?: number;
  seconds: number;
}

/** Starts src/web.ts as the Procfile does; resolves once /healthz answers. */
async function startWeb(env: NodeJS.ProcessEnv, port: number): Promise<ChildProcess> {
  const child = fork(script('src/web.ts'), [], {
    execArgv: [...loader, ...procfileNodeFlags('web')],
    env,
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  onCleanup(async () => {
    await stopWorker(child);
  });
  for (let tries = 0; ; tries++) {
    if (child.exitCode !== null) throw new Error('the web process exited at start');
    try {
      if ((await fetch(`http://127.0.0.1:${port}/healthz`)).ok) return child;
    } catch {
      // not listening yet
    }
    if (tries > 300) throw new Error('the web process did not listen in 60 s');
    await sleep(200);
  }
}

async function post(url: string, body: RequestInit['body'], type?: string): Promise<string> {
  const res = await fetch(url, {
    method: 'POST',
    body,
    ...(type && { headers: { 'content-type': type } }),
  });
  const answer = (await res.json()) as { id?: string; error?: string };
  if (res.status !== 202 || !answer.id) {
    throw new Error(`POST ${url}: ${res.status} ${answer.error ?? ''}`);
  }
  return answer.id;
}

/** Polls GET /jobs/:id until every job is completed; throws on a failure. */
async function completed(base: string, ids: string[], processes: ChildProcess[]): Promise<void> {
  const deadline = Date.now() + JOB_TIMEOUT_MS;
  const pending = new Set(ids);
  while (pending.size > 0) {
    for (const id of pending) {
      const job = (await (await fetch(`${base}/jobs/${id}`)).json()) as {
        state: string;
        error?: unknown;
      };
      if (job.state === 'completed') pending.delete(id);
      else if (job.state === 'failed') throw new Error(`job ${id} failed: ${String(job.error)}`);
    }
    if (processes.some((p) => p.exitCode !== null || p.signalCode !== null)) {
      throw new Error('a process exited during the load (out of memory?)');
    }
    if (Date.now() > deadline) throw new Error(`${pending.size} jobs not done in time`);
    if (pending.size > 0) await sleep(250);
  }
}

export interface MemoryOptions {
  /** Which loads (1-based, comma-separated, e.g. `3,4`); a partial run leaves RESULTS.md alone. */
  loads: string;
  /** Which modes: `worker`, `embedded` or both. */
  modes: string;
}

export async function runMemory({ loads, modes }: MemoryOptions): Promise<boolean> {
  const pick = loads.split(',').map((n) => LOADS[Number(n) - 1]);
  const chosenLoads = pick.filter((load): load is Load => load !== undefined);
  const chosenModes = (['worker', 'embedded'] as const).filter((m) => modes.includes(m));
  const partial = chosenLoads.length < LOADS.length || chosenModes.length < 2;
  const started = start();
  const { redis, dir, redisVersion } = await suiteRedis('memory');
  const files = { png: await bigImage('png'), jpeg: await bigImage('jpeg') };
  const rows: Row[] = [];

  for (const mode of chosenModes) {
    for (const load of chosenLoads) {
      const port = await freePort();
      const run = `${mode}-${rows.length}`;
      // The defaults, but for where things go: every other key is left unset.
      const env = {
        PATH: process.env.PATH,
        ...(process.env.BENCH_NODE_OPTIONS && { NODE_OPTIONS: process.env.BENCH_NODE_OPTIONS }),
        REDIS_URL: redis.url,
        PORT: String(port),
        QUEUE_PREFIX: run,
        STORAGE_DIR: join(dir, run, 'storage'),
        OUTBOX_DIR: join(dir, run, 'outbox'),
        LOG_LEVEL: 'info', // the worker's "consuming queues" line says it is up
        OFFLOAD_MODE: mode === 'embedded' ? 'embedded' : 'queue',
      };
      const web = await startWeb(env, port);
      const worker =
        mode === 'worker'
          ? (await startWorker(env, { probe: false, nodeFlags: procfileNodeFlags('worker') })).child
          : web;
      await sleep(2_000); // connected, schedules set: the idle figure
      const pid = worker.pid ?? NaN;
      const idle = (await memoryOf(pid)).hwm;
      const base = `http://127.0.0.1:${port}`;
      const begin = performance.now();
      const uploads = [
        ...Array.from({ length: load.png }, () => ['image/png', files.png, 'a.png'] as const),
        ...Array.from({ length: load.jpeg }, () => ['image/jpeg', files.jpeg, 'a.jpg'] as const),
      ];
      const ids = await Promise.all([
        ...uploads.map(([type, file, name]) => {
          const form = new FormData();
          form.append('image', new Blob([new Uint8Array(file)], { type }), name);
          return post(`${base}/thumbnails`, form);
        }),
        ...(load.report
          ? [
              post(
                `${base}/reports`,
                JSON.stringify({ email: 'memory@example.com', sample: STUDENTS }),
                'application/json',
              ),
            ]
          : []),
      ]);
      await completed(base, ids, [web, worker]);
      const seconds = (performance.now() - begin) / 1000;
      const peak = (await memoryOf(pid)).hwm;
      const webPeak = mode === 'worker' ? (await memoryOf(web.pid ?? NaN)).hwm : undefined;
      const exits = await Promise.all([...new Set([worker, web])].map((p) => stopWorker(p)));
      if (exits.some((code) => code !== 0)) throw new Error(`${run}: exit codes ${exits.join()}`);
      const row: Row = { mode, load: load.name, idle, peak, seconds, ...(webPeak && { webPeak }) };
      rows.push(row);
      console.log(
        `${mode.padEnd(8)} ${load.name}: idle ${mb(idle)} → peak ${mb(peak)} ` +
          `${peak <= GOAL ? 'PASS' : 'FAIL'} (${fixed(seconds, 1)} s)` +
          (webPeak ? `; its web process ${mb(webPeak)}` : ''),
      );
    }
  }

  const pass = rows.every((r) => r.peak <= GOAL);
  const lines = [
    '## memory: peak RSS at the default settings under the worst allowed load',
    '',
    ...header(
      started,
      `sharp ${version('sharp')} (libvips ${sharp.versions.vips}), pdfkit ${version('pdfkit')}, ` +
        `piscina ${version('piscina')}, bullmq ${version('bullmq')}, Redis ${redisVersion}`,
    ),
    `- Settings: the defaults, nothing set but REDIS_URL, PORT, QUEUE_PREFIX, STORAGE_DIR, ` +
      `OUTBOX_DIR, LOG_LEVEL=info: media concurrency ${MEDIA_SLOTS} ` +
      `(WORKER_CONCURRENCY ${defaults.WORKER_CONCURRENCY} for the other queues), ` +
      `REPORT_RENDER_THREADS ${defaults.REPORT_RENDER_THREADS}, REPORT_CHUNK_SIZE ` +
      `${defaults.REPORT_CHUNK_SIZE}, IMAGE_MAX_PIXELS ${defaults.IMAGE_MAX_PIXELS}, ` +
      `THUMBNAIL_WIDTHS ${defaults.THUMBNAIL_WIDTHS.join(',')}.`,
    `- Processes: \`worker\` = \`${command('src/web.ts')}\` + \`${command('workers/main.ts')}\` ` +
      `(the worker measured); \`embedded\` = \`${command('src/web.ts')}\` with ` +
      'OFFLOAD_MODE=embedded (web and worker in one process, measured); each with the ' +
      `Procfile's node flags (web: ${procfileNodeFlags('web').join(' ') || 'none'}; worker: ` +
      `${procfileNodeFlags('worker').join(' ') || 'none'}). A fresh set per row.`,
    `- Load, over HTTP as a client sends it, all at once: ${BIG.width}×${BIG.height} PNG ` +
      `(${mb(files.png.length)}) and JPEG with EXIF orientation 6 (${mb(files.jpeg.length)}), ` +
      'made by sharp (noise in 8×8 blocks: small files, every pixel decoded), to POST ' +
      `/thumbnails; \`{"sample": ${STUDENTS}}\` to POST /reports (render, zip, mail to the ` +
      'outbox). Done when GET /jobs/:id says completed for every job.',
    '- Peak: VmHWM from /proc/<pid>/status after the load (the kernel’s high-water mark of ' +
      'RSS, so no peak between samples is missed); idle: VmHWM 2 s after start. Goal: every ' +
      `peak ≤ ${mb(GOAL)} (a 512 MB dyno).`,
    '',
    '| mode | load | idle VmHWM | peak VmHWM | its web process | time | ≤ 450 MiB |',
    '| --- | --- | ---: | ---: | ---: | ---: | --- |',
    ...rows.map(
      (r) =>
        `| ${r.mode} | ${r.load} | ${mb(r.idle)} | ${mb(r.peak)} | ` +
        `${r.webPeak ? mb(r.webPeak) : '—'} | ${fixed(r.seconds, 1)} s | ` +
        `${r.peak <= GOAL ? 'PASS' : 'FAIL'} |`,
    ),
  ];
  if (partial) console.log('a partial run (--loads, --modes): RESULTS.md left alone');
  else writeSection('memory', lines.join('\n'));
  return pass;
}
