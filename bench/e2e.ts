// The e2e suite: how fast a worker drains a queue of pre-filled no-op jobs, at concurrency 1, 10
// and 50: bare BullMQ Worker, our runtime (bench/noop-worker.ts in offload mode: startRunner
// and the runner's process() for every job), bee-queue, and Celery (prefork and threads pools)
// on a Redis broker. Also Redis commands per job (INFO commandstats) and worker RSS. Run by
// bench/run.ts (`npm run bench -- --suite e2e`).
import { closeSync, openSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import BeeQueue from 'bee-queue';
import { Queue } from 'bullmq';
import type { JobData } from '../src/offload/index.js';
import {
  fixed,
  header,
  mb,
  median,
  roundRatio,
  MIN_ROUNDS_TO_WRITE,
  onCleanup,
  start,
  suiteRedis,
  version,
  writeSection,
  inRoundOrder,
  script,
} from './common.js';
import { noop, noopJob, wallClock } from './noop.js';
import { startOtlpSink, tracingEnv } from './otlp-sink.js';
import {
  celery,
  startCelery,
  startCeleryProducer,
  startNoopWorker,
  type Consumer,
} from './peers.js';

export const CONCURRENCIES = [1, 10, 50] as const;
/**
 * Warm-up drains per variant, each as big as a round's (JIT, connections, Redis memory): with
 * one drain of 1,000 jobs, round 1 still ran slower than the later rounds for every variant.
 */
const WARM_UP_DRAINS = 2;
const KINDS = [
  'bare',
  'offload',
  'offload+tracing',
  'bare-logged',
  'bee',
  'celery-prefork',
  'celery-threads',
] as const;
type Kind = (typeof KINDS)[number];
const TARGETS = { bare: 0.9, celery: 10, tracing: 0.85 };
const LABEL: Record<Kind, string> = {
  bare: 'bare BullMQ Worker',
  offload: 'offload (our runtime)',
  'offload+tracing': 'offload + tracing (every span exported)',
  'bare-logged': 'bare + the runner’s 2 log lines (reference)',
  bee: 'bee-queue',
  'celery-prefork': 'Celery, prefork pool',
  'celery-threads': 'Celery, threads pool',
};

export interface E2eOptions {
  rounds: number;
  /** Jobs per drain for the Node variants. */
  jobs: number;
  /** Jobs per drain for Celery (an order of magnitude slower: fewer, so the run stays short). */
  celeryJobs: number;
  /** Writes V8 CPU profiles of the bare and offload workers into this directory. */
  cpuProf?: string | undefined;
}

interface Drain {
  kind: Kind;
  concurrency: number;
  round: number;
  jobs: number;
  seconds: number;
  /** Every command Redis ran during the drain (those inside Lua scripts too), per job. */
  commands: number;
  /** EVALSHA/EVAL calls per job: BullMQ's and bee-queue's Lua scripts. */
  scripts: number;
  top: string;
  rss: number;
}

interface Variant {
  kind: Kind;
  concurrency: number;
  consumer: Consumer;
  jobs: number;
  /** Untimed: puts `jobs` jobs where the worker cannot see them yet. */
  prefill(count: number): Promise<void>;
  /** Timed: one Redis command that hands them all to the worker at once. */
  release(): Promise<unknown>;
  /** Untimed, after: what is left in the queue (must be 0). */
  left(): Promise<number>;
}

const parseCommandStats = (info: string) =>
  new Map(
    [...info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)]
      .map(([, name, calls]) => [name!, Number(calls)] as const)
      .filter(([name]) => !['info', 'config|resetstat'].includes(name)),
  );

/** Runs the e2e suite; true when the run is valid and every target is met. */
export async function runE2e(options: E2eOptions): Promise<boolean> {
  const { rounds, jobs, celeryJobs } = options;
  if (![rounds, jobs, celeryJobs].every((n) => Number.isInteger(n) && n >= 1)) {
    throw new Error('bad e2e options: --rounds, --jobs, --celery-jobs are whole numbers ≥ 1');
  }
  const started = start();
  const { redis, dir, admin, redisVersion } = await suiteRedis('e2e');
  const redisSettings = await admin.config('GET', 'appendonly', 'appendfsync', 'maxmemory-policy');
  const peer = celery();
  if ('missing' in peer) console.log(`Celery rows missing: ${peer.missing}`);

  // --- The workers: one per variant and concurrency, started once, idle between drains ---
  const variants: Variant[] = [];
  const logFiles: { variant: Variant; file: string }[] = [];
  const celeryProducer = 'version' in peer ? startCeleryProducer(redis.url) : undefined;
  // The offload workers run as the Procfile runs them, with the tracing preload: unset for
  // `offload`, on for `offload+tracing`, exporting every span to this sink.
  const sink = await startOtlpSink();
  onCleanup(() => sink.close());
  const preload = ['--import', script('src/telemetry.ts')];
  for (const concurrency of CONCURRENCIES) {
    for (const kind of ['bare', 'offload', 'offload+tracing', 'bare-logged'] as const) {
      const prefix = `${kind.replace('+', '-')}-c${concurrency}`;
      const queue = new Queue<JobData>(noop.queue, { connection: admin, prefix });
      onCleanup(() => queue.close());
      await queue.pause();
      const file = join(dir, `${prefix}.log`);
      const fd = kind === 'bare' ? 'ignore' : openSync(file, 'a');
      const traced = kind === 'offload+tracing';
      const consumer = await startNoopWorker(
        prefix,
        traced ? 'offload' : kind,
        { url: redis.url, concurrency, prefix },
        fd,
        options.cpuProf,
        kind.startsWith('offload')
          ? { execArgv: preload, env: traced ? tracingEnv(sink, 'offload-bench-worker') : {} }
          : {},
      );
      if (typeof fd === 'number') closeSync(fd);
      const variant: Variant = {
        kind,
        concurrency,
        consumer,
        jobs,
        async prefill(count) {
          await queue.clean(0, 0, 'completed'); // every drain starts from the same state
          for (let i = 0; i < count; i += 1_000) {
            const batch = Array.from({ length: Math.min(1_000, count - i) }, () => noopJob());
            await queue.addBulk(batch);
          }
        },
        release: () => queue.resume(),
        async left() {
          const counts = await queue.getJobCounts(
            'wait',
            'active',
            'prioritized',
            'delayed',
            'failed',
          );
          await queue.pause();
          return Object.values(counts).reduce((a, b) => a + b, 0);
        },
      };
      variants.push(variant);
      if (kind.startsWith('offload')) logFiles.push({ variant, file });
    }
    // bee-queue: filled under another name, then both keys renamed onto the worker's queue.
    const name = `noop-c${concurrency}`;
    const fillName = `fill-c${concurrency}`;
    const filler = new BeeQueue<object>(fillName, {
      redis: { url: redis.url },
      isWorker: false,
      getEvents: false,
      sendEvents: false,
    });
    onCleanup(() => filler.close());
    variants.push({
      kind: 'bee',
      concurrency,
      consumer: await startNoopWorker(`bee-c${concurrency}`, 'bee', {
        url: redis.url,
        concurrency,
        queue: name,
      }),
      jobs,
      async prefill(count) {
        await admin.unlink(`bq:${name}:jobs`, `bq:${name}:succeeded`);
        for (let i = 0; i < count; i += 1_000) {
          const batch = Array.from({ length: Math.min(1_000, count - i) }, () =>
            filler.createJob({}),
          );
          const errors = await filler.saveAll(batch);
          if (errors.size > 0) throw new Error(`bee-queue saveAll: ${errors.size} errors`);
        }
      },
      release: () =>
        admin
          .multi()
          .rename(`bq:${fillName}:jobs`, `bq:${name}:jobs`)
          .rename(`bq:${fillName}:waiting`, `bq:${name}:waiting`)
          .exec(),
      async left() {
        const [waiting, active, failed] = await Promise.all([
          admin.llen(`bq:${name}:waiting`),
          admin.llen(`bq:${name}:active`),
          admin.scard(`bq:${name}:failed`),
        ]);
        return waiting + active + failed;
      },
    });
    // Celery: published to a fill list, then renamed onto the list the worker pops.
    if (celeryProducer) {
      for (const pool of ['prefork', 'threads'] as const) {
        const queue = `celery-${pool}-c${concurrency}`;
        variants.push({
          kind: `celery-${pool}`,
          concurrency,
          consumer: await startCelery(queue, { url: redis.url, pool, concurrency, queue }),
          jobs: celeryJobs,
          prefill: (count) => celeryProducer.fill(`fill-${queue}`, count),
          release: () => admin.rename(`fill-${queue}`, queue),
          async left() {
            const [waiting, unacked] = await Promise.all([
              admin.llen(queue),
              admin.hlen('unacked'),
            ]);
            return waiting + unacked;
          },
        });
      }
    }
  }
  console.log(
    `redis-server ${redisVersion} on ${redis.url}; ${variants.length} workers up; ` +
      `${jobs} jobs per drain (Celery: ${celeryJobs})`,
  );

  async function drain(variant: Variant, round: number, count = variant.jobs): Promise<Drain> {
    await variant.prefill(count);
    const done = variant.consumer.expect(count);
    await admin.config('RESETSTAT');
    const begin = wallClock();
    await variant.release();
    const end = await done;
    await sleep(200); // the last jobs' acknowledgements land
    const stats = parseCommandStats(await admin.info('commandstats'));
    // Untimed: a few acknowledgements may still be on their way (Celery acks after the log line).
    let left = await variant.left();
    for (let tries = 0; left !== 0 && tries < 60; tries++) {
      await sleep(50);
      left = await variant.left();
    }
    if (left !== 0) throw new Error(`${variant.consumer.name}: ${left} jobs left or failed`);
    const all = [...stats.values()].reduce((a, b) => a + b, 0);
    const top = [...stats]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 6)
      .map(([name, calls]) => `${name} ${fixed(calls / count, 1)}`)
      .join(', ');
    return {
      kind: variant.kind,
      concurrency: variant.concurrency,
      round,
      jobs: count,
      seconds: (end - begin) / 1000,
      commands: all / count,
      scripts: ((stats.get('evalsha') ?? 0) + (stats.get('eval') ?? 0)) / count,
      top,
      rss: await variant.consumer.rss(),
    };
  }
  const show = (d: Drain) =>
    console.log(
      `${d.round ? `round ${d.round}` : 'warm-up'}  c${String(d.concurrency).padEnd(3)} ` +
        `${d.kind.padEnd(15)} ${fixed(d.jobs / d.seconds, 0).padStart(6)} jobs/s  ` +
        `${fixed(d.commands, 1)} cmds/job  rss ${mb(d.rss)}`,
    );

  // Warm-up drains for every variant, then interleaved rounds.
  for (let i = 0; i < WARM_UP_DRAINS; i++) {
    for (const variant of variants) show(await drain(variant, 0));
  }
  const drains: Drain[] = [];
  for (let round = 1; round <= rounds; round++) {
    for (const variant of inRoundOrder(variants, round)) {
      const d = await drain(variant, round);
      drains.push(d);
      show(d);
    }
  }
  // Every offload job went through the runner's process(): one "job completed" line each.
  const completedLines = await Promise.all(
    logFiles.map(
      async ({ file }) => (await readFile(file, 'utf8')).split('"msg":"job completed"').length - 1,
    ),
  );
  const expectedLines = logFiles.map(({ variant }) => (WARM_UP_DRAINS + rounds) * variant.jobs);
  const logsOk = completedLines.every((n, i) => n === expectedLines[i]);
  // Every span of the traced workers, over every drain (warm-ups included), once exported.
  const tracedJobs = variants
    .filter((v) => v.kind === 'offload+tracing')
    .reduce((sum, v) => sum + (WARM_UP_DRAINS + rounds) * v.jobs, 0);
  await sleep(1_000);
  const spansPerJob = sink.spans() / tracedJobs;
  const exits = await Promise.all(variants.map((v) => v.consumer.stop()));
  const cleanExit = exits.every((code) => code === 0);

  // --- Report ---
  const cell = (kind: Kind, concurrency: number) => {
    const mine = drains.filter((d) => d.kind === kind && d.concurrency === concurrency);
    if (mine.length === 0) return undefined;
    return {
      rate: median(mine.map((d) => d.jobs / d.seconds)),
      commands: median(mine.map((d) => d.commands)),
      scripts: median(mine.map((d) => d.scripts)),
      top: mine[mine.length - 1]!.top,
      rss: Math.max(...mine.map((d) => d.rss)),
      rates: mine.map((d) => fixed(d.jobs / d.seconds, 0)).join(', '),
    };
  };
  let pass = logsOk && cleanExit;
  const table = [
    '| concurrency | variant | jobs/drain | jobs/s (median) | rounds | × bare | Redis cmds/job | of which EVALSHA | top commands per job (last round) | worker RSS peak |',
    '| ---: | --- | ---: | ---: | --- | ---: | ---: | ---: | --- | ---: |',
  ];
  const verdicts = [
    '| concurrency | offload / bare (≥ 0.9×; median of per-round ratios) | offload / best Celery (≥ 10×) | offload / bare + 2 log lines (reference) | bare / best Celery (reference) |',
    '| ---: | --- | --- | ---: | ---: |',
  ];
  const tracingVerdicts = [
    `| concurrency | offload+tracing / offload (≥ ${TARGETS.tracing}×; median of per-round ratios) | spans exported per job (all drains) |`,
    '| ---: | --- | ---: |',
  ];
  for (const concurrency of CONCURRENCIES) {
    const bare = cell('bare', concurrency);
    for (const kind of KINDS) {
      const c = cell(kind, concurrency);
      if (!c) {
        table.push(
          `| ${concurrency} | ${LABEL[kind]} | — | missing: ${'missing' in peer ? peer.missing : '?'} | | | | | | |`,
        );
        continue;
      }
      table.push(
        `| ${concurrency} | ${LABEL[kind]} | ${kind.startsWith('celery') ? celeryJobs : jobs} | ` +
          `${fixed(c.rate, 0)} | ${c.rates} | ${bare ? fixed(c.rate / bare.rate) : 'n/a'}× | ` +
          `${fixed(c.commands, 1)} | ${fixed(c.scripts, 1)} | ${c.top} | ${mb(c.rss)} |`,
      );
    }
    const ours = cell('offload', concurrency);
    const celeries = (['celery-prefork', 'celery-threads'] as const)
      .map((kind) => cell(kind, concurrency)?.rate)
      .filter((r): r is number => r !== undefined);
    const perRound = (a: Kind, b: Kind) =>
      roundRatio(
        drains,
        (d) => d.kind === a && d.concurrency === concurrency,
        (d) => d.kind === b && d.concurrency === concurrency,
        (d) => d.jobs / d.seconds,
      );
    const vsBare = perRound('offload', 'bare');
    const tracingCost = perRound('offload+tracing', 'offload');
    const okTracing = tracingCost >= TARGETS.tracing;
    pass &&= okTracing;
    tracingVerdicts.push(
      `| ${concurrency} | ${fixed(tracingCost)}× ${okTracing ? 'PASS' : 'FAIL'} | ${fixed(spansPerJob, 1)} |`,
    );
    const vsLogged = perRound('offload', 'bare-logged');
    const bareVsCelery = bare && celeries.length ? bare.rate / Math.max(...celeries) : NaN;
    const vsCelery = ours && celeries.length ? ours.rate / Math.max(...celeries) : NaN;
    const okBare = vsBare >= TARGETS.bare;
    const okCelery = vsCelery >= TARGETS.celery;
    pass &&= okBare && okCelery;
    verdicts.push(
      `| ${concurrency} | ${fixed(vsBare)}× ${okBare ? 'PASS' : 'FAIL'} | ` +
        (celeries.length
          ? `${fixed(vsCelery, 1)}× ${okCelery ? 'PASS' : 'FAIL'}`
          : 'no Celery row: not measured') +
        ` | ${fixed(vsLogged)}× | ${fixed(bareVsCelery, 1)}× |`,
    );
  }
  const summary = [...table, '', ...verdicts, '', ...tracingVerdicts, ''];
  summary.push(
    logsOk && cleanExit
      ? `Valid run: every drain ended with 0 jobs left or failed; the offload workers logged one "job completed" per job (${completedLines.join(', ')}); every worker stopped cleanly on SIGTERM.`
      : `INVALID RUN: "job completed" lines ${completedLines.join(', ')} of ${expectedLines.join(', ')}; worker exit codes ${exits.join(', ')}.`,
  );
  const minutes = (Date.now() - started.at.getTime()) / 60_000;
  const full = [
    '## e2e: draining pre-filled no-op jobs — our runtime vs bare BullMQ, bee-queue, Celery',
    '',
    ...header(
      started,
      `Redis ${redisVersion}, bullmq ${version('bullmq')}, ioredis ${version('ioredis')}, ` +
        `bee-queue ${version('bee-queue')}, pino ${version('pino')}, ` +
        ('version' in peer
          ? `Celery ${peer.version} (Debian python3-celery, /usr/bin/python3)`
          : 'Celery: missing'),
    ),
    `- Redis: one private redis-server (test/harness/redis.ts) for every variant, \`${redisSettings.join(' ')}\`; CONFIG RESETSTAT before each drain, INFO commandstats 200 ms after its last job (the idle workers' own polling, a few commands a second, is in the counts: noise under 0.1 %).`,
    '- Variants, one worker process per variant and concurrency, all started once and idle between drains: ' +
      '`bare` = a BullMQ Worker (defaults, same concurrency) with an async no-op processor; ' +
      '`bare + the runner’s 2 log lines` = the same Worker writing the two lines our runner writes per job (a pino child logger with the same fields, synchronous writes to a file): a reference row that separates what logging costs from the rest of the runtime; ' +
      '`offload + tracing` = the same worker with tracing on (OTLP http/protobuf to a counting sink in the bench process, bench/otlp-sink.ts; always_on sampling, a batch queue big enough that no span is dropped): BullMQ’s consumer span, the run span and the ioredis spans inside it, for each job; the jobs are pre-filled without a trace, so each job is a trace of its own; ' +
      '`offload` = bench/noop-worker.ts, started as the Procfile starts the worker, with the `--import` tracing preload and no OTEL_* variable (tracing unset): `startRunner` wired as src/process/boot.ts `startWorkers` wires it (the config’s defaults: lock 30 s, stalled check 30 s, retention, the runner’s unbounded limiter; pino at info to a file, as to a log drain), with a registry of one no-op job (bench/noop.ts), so every job goes through the runner’s process() and runJob (input re-validated, time limit, two log lines); ' +
      '`bee-queue` = a bee-queue worker with its defaults; ' +
      '`Celery` = `celery worker --pool prefork|threads -c N -l INFO --without-heartbeat --without-gossip --without-mingle`, task `acks_late` (acked after it ran, as BullMQ’s jobs are), no result backend, default prefetch (4 per process/thread).',
    `- A drain: the jobs are put where the worker cannot see them (BullMQ: its queue paused, jobs added with addBulk exactly as \`offloader.enqueue(noop, {})\` stores them; bee-queue: saveAll under another queue name; Celery: apply_async to another list), then released with one Redis command (BullMQ resume; RENAME onto the worker’s keys), and timed from that command to the worker’s handler running the last job. Completed jobs are cleaned before each BullMQ drain, so every round starts from the same state.`,
    `- Jobs per drain: ${jobs} (Celery: ${celeryJobs}). The issue asks for 20,000; with ${KINDS.length} variants × 3 concurrencies × ${rounds} rounds that alone would take several minutes of the run's ~10, so the default run drains fewer (a rate, measured well past warm-up); \`npm run bench -- --suite e2e --jobs 20000 --celery-jobs 2000\` runs the full size. Celery drains fewer still: at its rate, ${jobs} jobs would take longer than all the other variants together.`,
    `- Rounds: ${WARM_UP_DRAINS} warm-up drains per variant (each the size of a round's), then ${rounds} interleaved rounds (every variant and concurrency in each). The suite took ${fixed(minutes, 1)} min.`,
    '- RSS: VmRSS of the worker process (Celery prefork: the main process and its pool children, added; shared pages are counted in each) at the end of each drain, the peak over the rounds.',
    '',
    '### Summary (medians over rounds)',
    '',
    'Absolute numbers on a shared 2-core machine are noise; the ratios are the result.',
    '',
    ...summary,
    '',
  ].join('\n');
  console.log(`\n${summary.join('\n')}`);
  if (rounds >= MIN_ROUNDS_TO_WRITE && !options.cpuProf) writeSection('e2e', full);
  else console.log('\n(under 3 rounds, or profiled workers: RESULTS.md left as it was)');
  return pass;
}
