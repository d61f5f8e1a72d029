// The thumbnails suite: images per second through a real worker process (make-thumbnail jobs
// on the `media` queue) against a bare sharp loop doing the same resizes in this process, on
// the same images, with the same number of images in flight; then the worker's peak RSS while
// it thumbnails images at the pixel limit. Run by bench/run.ts (`--suite thumbnails`).
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import sharp from 'sharp';
import { makeThumbnail } from '../jobs/index.js';
import { loadConfig, type Config } from '../src/config.js';
import { closeDeps, createDeps, type Deps } from '../src/deps.js';
import { ImageCheck } from '../src/images/check.js';
import { createLogger } from '../src/logger.js';
import { makeImage, type Format } from '../test/harness/images.js';
import {
  fixed,
  header,
  mb,
  median,
  MIN_ROUNDS_TO_WRITE,
  onCleanup,
  start,
  suiteRedis,
  version,
  writeSection,
  inRoundOrder,
  command,
} from './common.js';
import type { ProbeReply } from './worker-probe.js';
import { memoryOf, probe, producerFor, startWorker, stopWorker } from './worker-process.js';

const TARGET = 0.85; // offload images/s ≥ 0.85 × bare
/** The images both variants thumbnail in every round (noise: realistic file sizes). */
const IMAGE_SET: [format: Format, width: number, height: number, count: number][] = [
  ['jpeg', 3000, 2000, 12],
  ['png', 1600, 1200, 2], // a noisy 3000×2000 PNG is 17 MB, over UPLOAD_MAX_BYTES
  ['webp', 3000, 2000, 2],
];
const LABEL: Record<Format, string> = {
  jpeg: 'JPEG',
  png: 'PNG',
  webp: 'WebP',
  gif: 'GIF',
  avif: 'AVIF',
};
/** Images at the pixel limit for the peak-RSS runs, one fresh worker per case. */
const BIG = { width: 8000, height: 5000 };
const BIG_CASES = [
  { name: 'JPEG', format: 'jpeg', orientation: undefined, together: false },
  {
    name: 'JPEG, EXIF orientation 6 (autoOrient rotates it)',
    format: 'jpeg',
    orientation: 6,
    together: false,
  },
  { name: 'PNG', format: 'png', orientation: undefined, together: false },
  // WORKER_CONCURRENCY of them at once: what one worker may have to hold.
  { name: 'PNG', format: 'png', orientation: undefined, together: true },
] as const;

export interface ThumbnailOptions {
  rounds: number;
  /** WORKER_CONCURRENCY, and the bare loop's images in flight. */
  concurrency: number;
  /** Writes a V8 CPU profile of the rounds' worker into this directory. */
  cpuProf?: string | undefined;
}

interface Upload {
  id: string;
  key: string;
  path: string;
  label: string;
  bytes: number;
}

interface Round {
  round: number;
  variant: 'bare' | 'offload' | 'offload ×2';
  seconds: number;
  images: number;
  thumbnails: number;
  /** CPU time of the process doing the work (bench process / worker), ms per image. */
  cpuMs: number;
  lag?: ProbeReply['lag'];
}

// --- The images ----------------------------------------------------------------------------------

/** Runs `work` on every item with at most `limit` at once; results in the items' order. */
async function pool<T, R>(items: T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  const lane = async () => {
    for (let i = next++; i < items.length; i = next++) results[i] = await work(items[i]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  return results;
}

/** Throws unless POST /thumbnails would accept `file` (size, format, pixels, completeness). */
async function assertAllowed(file: Buffer, config: Config, what: string): Promise<void> {
  if (file.length > config.UPLOAD_MAX_BYTES) {
    throw new Error(`${what} is ${file.length} bytes, over UPLOAD_MAX_BYTES`);
  }
  const sink = new Writable({ write: (_chunk, _encoding, done) => done() });
  await pipeline(Readable.from([file]), new ImageCheck(config.IMAGE_MAX_PIXELS), sink);
}

/** A 40 MP image made in a second: noise in 8×8 blocks (decoding still costs every pixel). */
async function bigImage(format: 'jpeg' | 'png', orientation?: number): Promise<Buffer> {
  const small = { width: BIG.width / 8, height: BIG.height / 8, channels: 3 } as const;
  const noise = { type: 'gaussian', mean: 128, sigma: 60 } as const;
  const raw = await sharp({ create: { ...small, noise, background: 'black' } })
    .raw()
    .toBuffer();
  let image = sharp(raw, { raw: small }).resize(BIG.width, BIG.height, { kernel: 'nearest' });
  if (orientation) image = image.withMetadata({ orientation });
  return format === 'jpeg' ? image.jpeg().toBuffer() : image.png().toBuffer();
}

async function upload(deps: Deps, file: Buffer, label: string): Promise<Upload> {
  const id = randomUUID();
  const key = `uploads/${id}`;
  await deps.storage.put(key, Readable.from([file]));
  return { id, key, path: join(deps.config.STORAGE_DIR, key), label, bytes: file.length };
}

// --- bare: the job's image work, with sharp, in this process ------------------------------------

/** make-thumbnail's work on one file without storage or queue; returns the widths made. */
async function thumbnailBare(config: Config, image: Upload, outDir: string): Promise<number[]> {
  const original = await readFile(image.path);
  const upright = () =>
    sharp(original, {
      limitInputPixels: config.IMAGE_MAX_PIXELS,
      failOn: 'truncated',
    }).autoOrient();
  const { autoOrient } = await upright().metadata();
  const widths = [...new Set(config.THUMBNAIL_WIDTHS.map((w) => Math.min(w, autoOrient.width)))];
  for (const width of widths) {
    const { data } = await upright()
      .resize({ width })
      .webp({ quality: 80 })
      .toBuffer({ resolveWithObject: true });
    await writeFile(join(outDir, `${image.id}-${width}.webp`), data);
  }
  return widths;
}

// --- Main ----------------------------------------------------------------------------------------

/** Runs the thumbnails suite; true when the run is valid and the target is met. */
export async function runThumbnails(options: ThumbnailOptions): Promise<boolean> {
  sharp.cache(false); // as the worker does (src/images/sharp.ts): the same work on both sides
  sharp.concurrency(1); // likewise
  const { rounds: roundCount, concurrency } = options;
  if (![roundCount, concurrency].every((n) => Number.isInteger(n) && n >= 1)) {
    throw new Error('bad thumbnails options: --rounds and --concurrency are whole numbers ≥ 1');
  }
  const started = start();
  const { redis, dir } = await suiteRedis('thumbnails');
  const bareDir = join(dir, 'bare');
  await mkdir(bareDir);

  // The app's defaults for everything image-related, the same in the worker and the bare loop.
  const defaults = loadConfig({});
  const env = {
    REDIS_URL: redis.url,
    QUEUE_PREFIX: 'bench',
    OFFLOAD_MODE: 'queue',
    STORAGE_DIR: join(dir, 'storage'),
    OUTBOX_DIR: join(dir, 'outbox'),
    SIGNING_SECRET: randomBytes(32).toString('base64url'),
    WORKER_QUEUES: 'media',
    WORKER_CONCURRENCY: String(concurrency),
    // Over the app's media default (src/config.ts), so both sides run `concurrency` at once.
    QUEUE_CONCURRENCY: `media=${concurrency}`,
    IMAGE_MAX_PIXELS: String(defaults.IMAGE_MAX_PIXELS),
    UPLOAD_MAX_BYTES: String(defaults.UPLOAD_MAX_BYTES),
    THUMBNAIL_WIDTHS: defaults.THUMBNAIL_WIDTHS.join(','),
    LOG_LEVEL: 'info',
  };
  const workerEnv = { ...process.env, ...env, SMTP_URL: '', NODE_ENV: 'production' };
  const config = loadConfig({ ...env, LOG_LEVEL: 'warn' });
  const log = createLogger(config.LOG_LEVEL, 'bench');
  const deps = createDeps(config);
  onCleanup(() => closeDeps(deps));

  // The images, made once.
  console.log('making the images…');
  const specs = IMAGE_SET.flatMap(([format, width, height, count]) =>
    Array.from({ length: count }, () => ({ format, width, height })),
  );
  const uploads = await pool(specs, os.cpus().length, async ({ format, width, height }) => {
    const file = await makeImage(format, width, height);
    const label = `${LABEL[format]} ${width}×${height}`;
    await assertAllowed(file, config, label);
    return upload(deps, file, label);
  });
  const bigFiles = new Map<string, Promise<Buffer>>();
  const bigUploads = await Promise.all(
    BIG_CASES.map(async ({ name, format, orientation, together }) => {
      const made = `${format}-${orientation ?? 0}`;
      if (!bigFiles.has(made)) bigFiles.set(made, bigImage(format, orientation));
      const file = await bigFiles.get(made)!;
      await assertAllowed(file, config, name);
      const copies = together ? concurrency : 1;
      return {
        name: together ? `${concurrency} × ${name} at once` : name,
        bytes: file.length,
        keys: await Promise.all(
          Array.from({ length: copies }, async () => (await upload(deps, file, name)).key),
        ),
      };
    }),
  );

  // Producer side, wired as src/web.ts wires it; QueueEvents for the jobs' ends.
  const { offloader, completions } = await producerFor(
    config,
    log,
    deps,
    redis.port,
    makeThumbnail.queue,
  );

  const worker = await startWorker(workerEnv, { probe: true, cpuProf: options.cpuProf });
  // The scale row (no target): the same jobs through two worker processes, on a queue prefix of
  // their own, so neither takes the one-worker variant's jobs (nor it theirs).
  const pairConfig = loadConfig({ ...env, QUEUE_PREFIX: 'bench2', LOG_LEVEL: 'warn' });
  const pairEnv = { ...workerEnv, QUEUE_PREFIX: 'bench2' };
  const pair = await Promise.all([1, 2].map(() => startWorker(pairEnv, { probe: true })));
  const pairSide = await producerFor(pairConfig, log, deps, redis.port, makeThumbnail.queue);
  console.log(
    `redis-server on ${redis.url}; worker pid ${worker.child.pid ?? '?'} consuming media, ` +
      `concurrency ${concurrency}; ${uploads.length} images`,
  );

  const widthsOf = new Map<string, number[]>();
  async function bare(round: number): Promise<Round> {
    const cpu = process.cpuUsage();
    const begin = performance.now();
    const made = await pool(uploads, concurrency, (image) => thumbnailBare(config, image, bareDir));
    const seconds = (performance.now() - begin) / 1000;
    const { user, system } = process.cpuUsage(cpu);
    for (const [i, widths] of made.entries()) widthsOf.set(uploads[i]!.id, widths);
    const thumbnails = made.reduce((sum, widths) => sum + widths.length, 0);
    const cpuMs = (user + system) / 1000 / uploads.length;
    return { round, variant: 'bare', seconds, images: uploads.length, thumbnails, cpuMs };
  }
  async function offload(round: number): Promise<Round> {
    const before = await probe(worker.child);
    const begin = performance.now();
    const ids = await Promise.all(
      uploads.map(async ({ key }) => (await offloader.enqueue(makeThumbnail, { key })).id),
    );
    const { end, thumbnails } = await completions.all(ids, worker.child);
    const after = await probe(worker.child);
    const seconds = (end - begin) / 1000;
    const cpuMs = (after.cpu - before.cpu) / 1000 / uploads.length;
    return {
      round,
      variant: 'offload',
      seconds,
      images: ids.length,
      thumbnails,
      cpuMs,
      lag: after.lag,
    };
  }
  async function offloadPair(round: number): Promise<Round> {
    const children = pair.map((w) => w.child);
    const before = await Promise.all(children.map((child) => probe(child)));
    const begin = performance.now();
    const ids = await Promise.all(
      uploads.map(async ({ key }) => (await pairSide.offloader.enqueue(makeThumbnail, { key })).id),
    );
    const { end, thumbnails } = await pairSide.completions.all(ids, children);
    const after = await Promise.all(children.map((child) => probe(child)));
    const cpu = after.reduce((sum, a, i) => sum + a.cpu - (before[i]?.cpu ?? 0), 0);
    return {
      round,
      variant: 'offload ×2',
      seconds: (end - begin) / 1000,
      images: ids.length,
      thumbnails,
      cpuMs: cpu / 1000 / uploads.length,
      lag: after[0]?.lag,
    };
  }
  const show = (r: Round) =>
    console.log(
      `${r.round ? `round ${r.round}` : 'warm-up'}  ${r.variant.padEnd(10)} ` +
        `${fixed(r.images / r.seconds).padStart(6)} images/s  ` +
        `${fixed(r.thumbnails / r.seconds, 1).padStart(6)} thumbnails/s  ` +
        `cpu ${fixed(r.cpuMs, 0)} ms/image  ` +
        `${fixed((r.cpuMs * r.images) / 1000 / r.seconds)} cores` +
        (r.lag ? `  lag p99 ${fixed(r.lag.p99, 0)} ms, max ${fixed(r.lag.max, 0)} ms` : ''),
    );

  show(await bare(0));
  show(await offload(0));
  show(await offloadPair(0));
  // Same work: the worker's thumbnails must be byte for byte the bare loop's.
  let compared = 0;
  let identical = 0;
  for (const image of uploads) {
    for (const width of widthsOf.get(image.id) ?? []) {
      const name = `${image.id}-${width}.webp`;
      const [mine, theirs] = await Promise.all([
        readFile(join(bareDir, name)),
        readFile(join(config.STORAGE_DIR, 'thumbnails', name)),
      ]);
      compared += 1;
      if (mine.equals(theirs)) identical += 1;
    }
  }
  console.log(`outputs: ${identical} of ${compared} thumbnails byte-identical`);

  const rounds: Round[] = [];
  for (let round = 1; round <= roundCount; round++) {
    for (const run of inRoundOrder([bare, offload, offloadPair], round)) {
      const r = await run(round);
      rounds.push(r);
      show(r);
    }
  }
  const failedAttempts = [worker, ...pair].reduce((sum, w) => sum + w.failedAttempts, 0);
  const pairExits = await Promise.all(pair.map((w) => stopWorker(w.child)));
  const roundsPeak = worker.child.pid ? (await memoryOf(worker.child.pid)).hwm : NaN;
  const workerExit = await stopWorker(worker.child);

  // Peak RSS: a fresh worker per case, idle first, then once its jobs completed.
  const memory: {
    name: string;
    bytes: number;
    idle: { rss: number; hwm: number };
    peak: number;
    seconds: number;
  }[] = [];
  for (const image of bigUploads) {
    const fresh = await startWorker(workerEnv, { probe: false });
    const pid = fresh.child.pid;
    if (pid === undefined) throw new Error('the worker has no pid');
    await sleep(2_000); // connected, schedules set
    const idle = await memoryOf(pid);
    const begin = performance.now();
    const ids = await Promise.all(
      image.keys.map(async (key) => (await offloader.enqueue(makeThumbnail, { key })).id),
    );
    const { end } = await completions.all(ids, fresh.child);
    const { hwm } = await memoryOf(pid);
    const exit = await stopWorker(fresh.child);
    if (fresh.failedAttempts > 0 || exit !== 0) throw new Error(`${image.name}: worker trouble`);
    const seconds = (end - begin) / 1000;
    memory.push({ name: image.name, bytes: image.bytes, idle, peak: hwm, seconds });
    console.log(
      `peak RSS  ${image.name}: idle ${mb(idle.hwm)} → peak ${mb(hwm)} ` +
        `(+${mb(hwm - idle.hwm)}), ${fixed(seconds, 1)} s`,
    );
  }

  // --- Report ---
  /** The working process' CPU time over the round's wall time. */
  const coresBusy = (r: Round) => (r.cpuMs * r.images) / 1000 / r.seconds;
  const of = (variant: Round['variant']) => rounds.filter((r) => r.variant === variant);
  const summarize = (mine: Round[]) => ({
    images: median(mine.map((r) => r.images / r.seconds)),
    thumbnails: median(mine.map((r) => r.thumbnails / r.seconds)),
    cpuMs: median(mine.map((r) => r.cpuMs)),
    cores: median(mine.map(coresBusy)),
    p99: mine[0]?.lag ? median(mine.map((r) => r.lag?.p99 ?? NaN)) : undefined,
    max: mine[0]?.lag ? median(mine.map((r) => r.lag?.max ?? NaN)) : undefined,
  });
  const medians = {
    bare: summarize(of('bare')),
    offload: summarize(of('offload')),
    'offload ×2': summarize(of('offload ×2')),
  };
  const scale = medians['offload ×2'].images / medians.offload.images;
  const ratio = medians.offload.images / medians.bare.images;
  const cpuRatio = medians.offload.cpuMs / medians.bare.cpuMs;
  const expected = rounds.every((r) => r.thumbnails === of('bare')[0]?.thumbnails);
  const valid =
    failedAttempts === 0 &&
    completions.stalled === 0 &&
    pairSide.completions.stalled === 0 &&
    workerExit === 0 &&
    pairExits.every((code) => code === 0) &&
    expected &&
    identical === compared;
  const ok = ratio >= TARGET;
  const pass = valid && ok;
  const lag = (m: { p99?: number | undefined; max?: number | undefined }) =>
    m.p99 === undefined ? '—' : `${fixed(m.p99, 0)} / ${fixed(m.max ?? NaN, 0)}`;
  const files = (label: string) => uploads.filter((u) => u.label === label);
  const labels = [...new Set(uploads.map((u) => u.label))];
  const megapixels = IMAGE_SET.map(([, width, height]) => (width * height) / 1e6);
  const totalBytes = uploads.reduce((sum, u) => sum + u.bytes, 0);
  const perPass = of('bare')[0]?.thumbnails ?? 0;

  const summary = [
    '| variant | images/s | thumbnails/s | CPU ms/image | cores busy | worker event-loop lag p99 / max ms |',
    '| --- | ---: | ---: | ---: | ---: | ---: |',
    ...(['bare', 'offload', 'offload ×2'] as const).map(
      (v) =>
        `| ${v} | ${fixed(medians[v].images)} | ${fixed(medians[v].thumbnails, 1)} | ` +
        `${fixed(medians[v].cpuMs, 0)} | ${fixed(medians[v].cores)} | ${lag(medians[v])} |`,
    ),
    '',
    '| ratio | images/s | CPU per image | target | verdict |',
    '| --- | ---: | ---: | --- | --- |',
    `| offload / bare | ${fixed(ratio)}× | ${fixed(cpuRatio)}× | images/s ≥ ${TARGET}× | ` +
      `${ok ? 'PASS' : 'FAIL'} |`,
    `| offload ×2 / offload (scale: 2 worker processes vs 1) | ${fixed(scale)}× | ` +
      `${fixed(medians['offload ×2'].cpuMs / medians.offload.cpuMs)}× | — | (reference) |`,
    '',
    valid
      ? `Valid run: ${2 * (roundCount + 1)} × ${uploads.length} jobs completed, no failed ` +
        `attempt, no stalled job, ${identical} of ${compared} thumbnails byte-identical to the ` +
        'bare loop’s, the workers stopped cleanly on SIGTERM.'
      : `INVALID RUN: failed attempts ${failedAttempts}, stalled ${completions.stalled}, ` +
        `thumbnails per pass as expected ${expected ? 'yes' : 'no'}, identical outputs ` +
        `${identical} of ${compared}, worker exit codes ${[workerExit, ...pairExits].join(', ')}.`,
  ];
  const lines = [
    '## thumbnails: make-thumbnail through a worker vs a bare sharp loop',
    '',
    ...header(
      started,
      `sharp ${version('sharp')} (libvips ${sharp.versions.vips}), bullmq ${version('bullmq')}, ` +
        `ioredis ${version('ioredis')}, pino ${version('pino')}`,
    ),
    `- Images: ${uploads.length} uploads made once with makeImage (noise, so realistic sizes; ` +
      `${mb(totalBytes)} in all): ${labels.map((l) => `${files(l).length} × ${l}`).join(', ')}; ` +
      `widths ${config.THUMBNAIL_WIDTHS.join(', ')} → ${perPass} WebP thumbnails (quality 80) ` +
      'per pass. Every round, each variant thumbnails every image once.',
    `- Parallelism, the same in both: ${concurrency} images in flight (WORKER_CONCURRENCY=` +
      `${concurrency} in the worker; ${concurrency} at once in the bare loop); ` +
      `sharp.concurrency() ${sharp.concurrency()} (libvips threads per image), ` +
      `UV_THREADPOOL_SIZE ${process.env.UV_THREADPOOL_SIZE ?? '4 (default)'}, ` +
      'libvips operation cache off (sharp.cache(false), as src/images/sharp.ts sets it), in both processes.',
    '- `bare`: this process, `sharp` directly: read the upload’s file, ' +
      '`sharp(file, {limitInputPixels, failOn: truncated}).autoOrient()`, metadata, then per ' +
      'width a fresh `sharp(file, …).autoOrient().resize({width}).webp({quality: 80}).toBuffer()` and write the file — the ' +
      'job’s image work without storage keys, queue or logs (its files are written plainly; ' +
      'the job’s storage also fsyncs and renames each, under a millisecond here).',
    `- \`offload\`: a real worker process (\`${command('workers/main.ts')}\`, WORKER_QUEUES=media, ` +
      'LOG_LEVEL=info, logs piped to the bench) runs one make-thumbnail job per image, enqueued ' +
      'with `offloader.enqueue`; timed from the first enqueue to the last `completed` event ' +
      '(BullMQ QueueEvents). A private redis-server (test/harness/redis.ts) holds the queue.',
    '- `offload ×2` (the scale row, no target): the same jobs through two such worker processes ' +
      'at once, on a queue prefix of their own (QUEUE_PREFIX=bench2; each idles while the other ' +
      'variant runs); CPU is both processes’ together, lag the first one’s.',
    '- CPU ms/image: CPU time of the process doing the work (bench process for `bare`, the ' +
      'worker for `offload`: not Redis, not the enqueueing). Event-loop lag: the worker’s, beyond ' +
      'a 10 ms sampling timer (bench/worker-probe.ts). Cores busy: that CPU time over the ' +
      `round's wall time; under ${os.cpus().length} when another process took CPU or the ` +
      'working process waited. Rounds whose variants got unequal cores compare the machine, not ' +
      'the code; CPU per image is the steadier comparison.',
    `- Rounds: a warm-up pass per variant, then ${roundCount} interleaved rounds (bare, offload, offload ×2).`,
    '',
    '### Summary (medians over rounds)',
    '',
    `Absolute numbers on a shared ${os.cpus().length}-core machine are noise; the ratio is the result.`,
    '',
    ...summary,
    '',
    '### Rounds',
    '',
    '| round | variant | seconds | images/s | thumbnails/s | CPU ms/image | cores busy | lag p99 ms | lag max ms |',
    '| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...rounds.map(
      (r) =>
        `| ${r.round} | ${r.variant} | ${fixed(r.seconds)} | ${fixed(r.images / r.seconds)} | ` +
        `${fixed(r.thumbnails / r.seconds, 1)} | ${fixed(r.cpuMs, 0)} | ${fixed(coresBusy(r))} | ` +
        `${r.lag ? fixed(r.lag.p99, 0) : '—'} | ${r.lag ? fixed(r.lag.max, 0) : '—'} |`,
    ),
    '',
    '### Worker peak RSS at the pixel limit',
    '',
    `A fresh worker process per row (same env, WORKER_CONCURRENCY=${concurrency}), images of ` +
      `${BIG.width}×${BIG.height} = ${(BIG.width * BIG.height) / 1e6} MP, IMAGE_MAX_PIXELS ` +
      `${config.IMAGE_MAX_PIXELS}: each passes the upload check (src/images/check.ts) and ` +
      'UPLOAD_MAX_BYTES — small files with the most pixels allowed (noise in 8×8 blocks). ' +
      'VmRSS/VmHWM from /proc/<pid>/status: idle 2 s after "consuming queues", then the peak ' +
      '(VmHWM) once its jobs completed; "time" is from enqueue to the last completion (block ' +
      `noise decodes faster than a photo, so it is a floor). For comparison, the rounds' worker (${concurrency} of the images above at once, ` +
      `${fixed(Math.min(...megapixels), 1)}–${fixed(Math.max(...megapixels), 1)} MP) peaked at ` +
      `${mb(roundsPeak)}.`,
    '',
    '| image | file | idle VmRSS | idle VmHWM | peak VmHWM | growth | time |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...memory.map(
      (m) =>
        `| ${m.name} | ${mb(m.bytes)} | ${mb(m.idle.rss)} | ${mb(m.idle.hwm)} | ${mb(m.peak)} | ` +
        `+${mb(m.peak - m.idle.hwm)} | ${fixed(m.seconds, 1)} s |`,
    ),
  ];
  console.log(`\n${summary.join('\n')}`);
  if (roundCount >= MIN_ROUNDS_TO_WRITE) writeSection('thumbnails', lines.join('\n'));
  else console.log(`\n(under ${MIN_ROUNDS_TO_WRITE} rounds: bench/RESULTS.md left as it was)`);
  return pass;
}
