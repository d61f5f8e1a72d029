// The http suite: the offload app's POST /signup against two bare baselines, side by side, in
// one run. A private redis-server, the servers in a child process (bench/servers.ts),
// autocannon here. Run by bench/run.ts (`npm run bench -- --suite http`).
import autocannon from 'autocannon';
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { sendEmail } from '../jobs/index.js';
import { hasRedisServer, startRedis } from '../test/harness/redis.js';
import {
  fixed,
  header,
  mb,
  median,
  roundRatio,
  MIN_ROUNDS_TO_WRITE,
  onCleanup,
  start,
  version,
  writeSection,
  type Started,
  inRoundOrder,
  loader,
  script,
} from './common.js';
import { startOtlpSink, tracingEnv, type OtlpSink } from './otlp-sink.js';
import type { ServersReady, Variant as ServerVariant } from './servers.js';

/** `offload+tracing`: the same app in a second servers process, with tracing on. */
type Variant = ServerVariant | 'offload+tracing';
const VARIANTS: readonly Variant[] = [
  'bare-json',
  'bare-add',
  'bare-enqueue',
  'offload',
  'offload+tracing',
];
/** The queue prefix each variant enqueues under (bare-json enqueues nothing). */
const PREFIX: Record<Variant, string | undefined> = {
  'bare-json': undefined,
  'bare-add': 'bare',
  'bare-enqueue': 'enq',
  offload: 'bench',
  'offload+tracing': 'bench',
};
const BODY = JSON.stringify({ email: 'ada@example.com', name: 'Ada Lovelace' });
const TARGETS = { throughput: 0.9, p99: 1.5, tracing: 0.85 };

export interface HttpOptions {
  rounds: number;
  /** Seconds per round. */
  duration: number;
  /** Seconds of warm-up per variant. */
  warmup: number;
  connections: number;
  /** Comma-separated variants; a run with fewer than all leaves RESULTS.md alone. */
  only: string;
  /** Writes a V8 CPU profile of the servers' process into this directory. */
  cpuProf?: string | undefined;
}

let settings: HttpOptions;
let variants: Variant[];

interface Round {
  variant: Variant;
  round: number;
  rps: number;
  p50: number;
  p99: number;
  requests: number;
  /** Responses that were not 202, plus connection errors and timeouts. */
  bad: number;
  /** CPU time of the servers' process per request (µs): steadier than req/s on a busy box. */
  cpuPerRequest: number;
  statuses: string;
  /** Jobs found in the wait list after the round (bare-json: none). */
  jobs: number | undefined;
  usedMemory: number;
  /** offload+tracing: spans the sink received per request. */
  spansPerRequest: number | undefined;
}

// --- Processes: started once, stopped once (bench/common.ts cleanup, also on Ctrl-C) ---------

/** The servers process, and the traced one (`offload+tracing`), each serving every variant. */
let servers: ChildProcess | undefined;
let traced: ChildProcess | undefined;
let sink: OtlpSink | undefined;
let admin: Redis | undefined;

async function stopServers(child: ChildProcess | undefined): Promise<void> {
  if (child && child.exitCode === null && child.signalCode === null) {
    const exited = once(child, 'exit');
    if (child.connected) child.disconnect();
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  }
}

/** Both run as the Procfile runs web: with the tracing preload, which does nothing unless the
 * OTEL_* variables ask (`tracing`: they do, exporting every span to the sink). */
function startServers(redisUrl: string, dir: string, tracing?: OtlpSink) {
  const child = fork(script('bench/servers.ts'), [], {
    execArgv: [
      ...loader,
      '--import',
      script('src/telemetry.ts'),
      ...(settings.cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${settings.cpuProf}`] : []),
    ],
    env: {
      ...process.env,
      BENCH_REDIS_URL: redisUrl,
      BENCH_DIR: dir,
      NODE_ENV: 'production',
      ...(tracing ? tracingEnv(tracing, 'offload-bench-web') : {}),
    },
    // stdout to /dev/null: the app logs there, as it would to a log drain.
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  onCleanup(() => stopServers(child));
  const ready = new Promise<ServersReady>((resolve, reject) => {
    child.once('message', (message) => {
      resolve(message as ServersReady);
    });
    child.once('exit', (code) => {
      reject(new Error(`bench/servers.ts exited (${String(code)}) before listening`));
    });
  });
  return { child, ready };
}

// --- Measuring -----------------------------------------------------------------------------------

/** A servers process' CPU time so far, in µs (user + system). */
async function serversCpu(child: ChildProcess | undefined): Promise<number> {
  if (!child) throw new Error('servers not started');
  const reply = once(child, 'message');
  child.send('cpu');
  const [usage] = (await reply) as [NodeJS.CpuUsage];
  return usage.user + usage.system;
}

async function measure(variant: Variant, port: number, duration: number, round: number) {
  if (!admin) throw new Error('no admin connection');
  // Every round starts from an empty Redis (never mid-round), so memory stays small and no
  // variant pays for another's backlog.
  await admin.flushall('SYNC');
  await sleep(500);
  const proc = variant === 'offload+tracing' ? traced : servers;
  const cpuBefore = await serversCpu(proc);
  const spansBefore = sink?.spans() ?? 0;
  const result = await autocannon({
    url: `http://127.0.0.1:${port}/signup`,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: BODY,
    connections: settings.connections,
    pipelining: 1,
    duration,
  });
  const cpu = (await serversCpu(proc)) - cpuBefore;
  await sleep(300); // requests still in flight when autocannon stopped land in Redis
  // The round's spans, all exported (the batch processor's delay is 200 ms).
  const spans = variant === 'offload+tracing' ? (sink?.spans() ?? 0) - spansBefore : undefined;
  const prefix = PREFIX[variant];
  const jobs = prefix ? await admin.llen(`${prefix}:${sendEmail.queue}:wait`) : undefined;
  const usedMemory = Number(/used_memory:(\d+)/.exec(await admin.info('memory'))?.[1] ?? NaN);

  const statuses = Object.entries(result.statusCodeStats ?? {}).map(
    ([code, { count = 0 }]) => [code, count] as const,
  );
  const not202 = statuses.filter(([code]) => code !== '202').reduce((sum, [, n]) => sum + n, 0);
  const ok = result['2xx'];
  // An accepted job must be in Redis: fewer jobs than 2xx answers would be a lie.
  const missing = jobs !== undefined && jobs < ok ? ok - jobs : 0;
  return {
    variant,
    round,
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    requests: result.requests.total,
    cpuPerRequest: cpu / result.requests.total,
    bad: not202 + result.non2xx + result.errors + result.timeouts + missing,
    statuses: statuses.map(([code, n]) => `${code}×${n}`).join(' ') || 'none',
    jobs,
    usedMemory,
    spansPerRequest: spans === undefined ? undefined : spans / result.requests.total,
  } satisfies Round;
}

// --- Report --------------------------------------------------------------------------------------

/** The settings the report states, read back from the running server (CONFIG GET). */
const REDIS_SETTINGS = ['appendonly', 'appendfsync', 'maxmemory-policy', 'save'];
const pairs = (flat: string[]) =>
  flat.flatMap((value, i) => (i % 2 ? [] : [`${value} ${flat[i + 1] || '""'}`])).join(', ');
function report(rounds: Round[], redisVersion: string, redisSettings: string[], started: Started) {
  const medians = new Map(
    variants.map((variant) => {
      const mine = rounds.filter((r) => r.variant === variant);
      return [
        variant,
        {
          rps: median(mine.map((r) => r.rps)),
          p50: median(mine.map((r) => r.p50)),
          p99: median(mine.map((r) => r.p99)),
          cpu: median(mine.map((r) => r.cpuPerRequest)),
          bad: mine.reduce((sum, r) => sum + r.bad, 0),
          requests: mine.reduce((sum, r) => sum + r.requests, 0),
        },
      ] as const;
    }),
  );
  const valid = rounds.every((r) => r.bad === 0);
  const cpus = os.cpus();

  const summary: string[] = [
    `Absolute numbers on a shared ${cpus.length}-core machine are noise; the ratios are the result.`,
    '',
    '| variant | req/s | p50 ms | p99 ms | server CPU µs/req | requests | errors + non-202 |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...[...medians].map(
      ([v, m]) =>
        `| ${v} | ${fixed(m.rps, 0)} | ${fixed(m.p50, 1)} | ${fixed(m.p99, 1)} | ${fixed(m.cpu, 0)} | ` +
        `${m.requests} | ${m.bad} |`,
    ),
    '',
  ];
  // Per-round ratios (see roundRatio): this machine's speed drifts between rounds.
  const ratio = (a: Variant, b: Variant) => {
    if (!medians.has(a) || !medians.has(b)) return undefined;
    const of = (value: (r: Round) => number) =>
      roundRatio(
        rounds,
        (r) => r.variant === a,
        (r) => r.variant === b,
        value,
      );
    return {
      throughput: of((r) => r.rps),
      p99: of((r) => r.p99),
      cpu: of((r) => r.cpuPerRequest),
    };
  };
  const offload = ratio('offload', 'bare-add');
  const bare = ratio('bare-add', 'bare-json');
  const enqueue = ratio('bare-enqueue', 'bare-add');
  const stack = ratio('offload', 'bare-enqueue');
  if (offload || bare) {
    summary.push(
      '| ratio (median of per-round ratios) | throughput | p99 latency | CPU per request | target | verdict |',
    );
    summary.push('| --- | ---: | ---: | ---: | --- | --- |');
  }
  let pass = valid;
  if (offload) {
    const ok = offload.throughput >= TARGETS.throughput && offload.p99 <= TARGETS.p99;
    pass &&= ok;
    summary.push(
      `| offload / bare-add | ${fixed(offload.throughput)}× | ${fixed(offload.p99)}× | ` +
        `${fixed(offload.cpu)}× | ` +
        `throughput ≥ ${TARGETS.throughput}×, p99 ≤ ${TARGETS.p99}× | ${ok ? 'PASS' : 'FAIL'} |`,
    );
  }
  if (enqueue && stack) {
    summary.push(
      `| bare-enqueue / bare-add | ${fixed(enqueue.throughput)}× | ${fixed(enqueue.p99)}× | ${fixed(enqueue.cpu)}× | ` +
        `(the offloader alone: \`offloader.enqueue\` for \`queue.add\`) | — |`,
      `| offload / bare-enqueue | ${fixed(stack.throughput)}× | ${fixed(stack.p99)}× | ${fixed(stack.cpu)}× | ` +
        `(the app around it: request id and log line, metrics, routing, validation, 202 body) | — |`,
    );
  }
  const tracing = ratio('offload+tracing', 'offload');
  if (tracing) {
    const ok = tracing.throughput >= TARGETS.tracing;
    pass &&= ok;
    const spans = median(
      rounds.filter((r) => r.spansPerRequest !== undefined).map((r) => r.spansPerRequest ?? 0),
    );
    summary.push(
      `| offload+tracing / offload | ${fixed(tracing.throughput)}× | ${fixed(tracing.p99)}× | ` +
        `${fixed(tracing.cpu)}× | throughput ≥ ${TARGETS.tracing}× (${fixed(spans, 1)} spans ` +
        `exported per request) | ${ok ? 'PASS' : 'FAIL'} |`,
    );
  }
  if (bare) {
    summary.push(
      `| bare-add / bare-json | ${fixed(bare.throughput)}× | ${fixed(bare.p99)}× | ${fixed(bare.cpu)}× | ` +
        `(the cost of one Redis round trip) | — |`,
    );
  }
  summary.push('');
  summary.push(
    valid
      ? 'Valid run: every response was 202, no errors, every accepted job was in Redis.'
      : 'INVALID RUN: some responses were not 202, failed, or their job was not in Redis (see rounds).',
  );

  const lines = [
    '## http: what offloading costs a web request',
    '',
    ...header(
      started,
      `Redis ${redisVersion}, bullmq ${version('bullmq')}, express ${version('express')}, ` +
        `ioredis ${version('ioredis')}, pino ${version('pino')}, autocannon ${version('autocannon')}`,
    ),
    `- Redis: private redis-server (test/harness/redis.ts), \`${pairs(redisSettings)}\`, ` +
      `flushed before every round; peak used_memory ${mb(Math.max(...rounds.map((r) => r.usedMemory)))}`,
    `- Load: autocannon, ${settings.connections} connections, no pipelining, ` +
      `POST /signup \`${BODY}\`; warm-up ${settings.warmup} s per variant, then ` +
      `${settings.rounds} interleaved rounds of ${settings.duration} s (${variants.join(', ')})`,
    '- Variants: `bare-json` = Express 5 + express.json() + 202; `bare-add` = the same + a bare ' +
      'BullMQ `queue.add` with the app’s job options; `bare-enqueue` = the same route with ' +
      '`offloader.enqueue(sendEmail, …)` in place of `queue.add` (reference: the offloader alone); ' +
      '`offload` = the real app (request log to ' +
      '/dev/null, helmet headers, the signup rate limit counted in Redis (a limit the one-IP ' +
      'load never reaches), validation, `offloader.enqueue`, 202 + Location), run as the Procfile runs web: ' +
      'with the `--import` tracing preload and no OTEL_* variable (tracing unset); ' +
      '`offload+tracing` = the same app in a second servers process with tracing on ' +
      '(src/telemetry.ts: the request span, BullMQ’s add span, the ioredis span inside it; always_on sampling), exporting ' +
      'every span as OTLP http/protobuf (the SDK’s default) to a counting sink in the bench process (bench/otlp-sink.ts).',
    '',
    '### Summary (medians over rounds)',
    '',
    ...summary,
    '',
    '### Rounds',
    '',
    '| round | variant | req/s | p50 ms | p99 ms | CPU µs/req | requests | statuses | jobs in Redis | spans/req | bad |',
    '| ---: | --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: |',
    ...rounds.map(
      (r) =>
        `| ${r.round} | ${r.variant} | ${fixed(r.rps, 0)} | ${fixed(r.p50, 1)} | ${fixed(r.p99, 1)} | ` +
        `${fixed(r.cpuPerRequest, 0)} | ` +
        `${r.requests} | ${r.statuses} | ${r.jobs ?? '—'} | ` +
        `${r.spansPerRequest === undefined ? '—' : fixed(r.spansPerRequest, 1)} | ${r.bad} |`,
    ),
    '',
  ];
  return { summary, full: lines.join('\n'), pass };
}

// --- Main ----------------------------------------------------------------------------------------

/** Runs the http suite; true when the run is valid and every target is met. */
export async function runHttp(options: HttpOptions): Promise<boolean> {
  settings = options;
  variants = VARIANTS.filter((v) => options.only.split(',').includes(v));
  const counts = [options.rounds, options.duration, options.warmup, options.connections];
  if (variants.length === 0 || counts.some((n) => !Number.isInteger(n) || n < 1)) {
    throw new Error(`bad http options; variants are ${VARIANTS.join(', ')}`);
  }
  const started = start();
  if (!hasRedisServer()) throw new Error('redis-server is not on PATH');
  // The project's recommended flags (src/redis/server.ts), on a free port, in a temp dir.
  const redis = await startRedis();
  onCleanup(() => redis.destroy());
  const scratch = await mkdtemp(join(os.tmpdir(), 'offload-bench-')); // outbox and storage dirs
  onCleanup(() => rm(scratch, { recursive: true, force: true }));
  const connection = new Redis(redis.url, { maxRetriesPerRequest: 1 });
  admin = connection;
  onCleanup(() => connection.disconnect());
  const redisVersion = /redis_version:([^\r\n]+)/.exec(await admin.info('server'))?.[1] ?? '?';
  const redisSettings = await admin.config('GET', ...REDIS_SETTINGS);
  const plain = startServers(redis.url, scratch);
  servers = plain.child;
  const { ports: plainPorts } = await plain.ready;
  const tracedSink = await startOtlpSink();
  sink = tracedSink;
  onCleanup(() => tracedSink.close());
  const tracing = startServers(redis.url, scratch, tracedSink);
  traced = tracing.child;
  const ports: Record<Variant, number> = {
    ...plainPorts,
    'offload+tracing': (await tracing.ready).ports.offload,
  };
  console.log(`redis-server ${redisVersion} on ${redis.url}; servers on ${JSON.stringify(ports)}`);

  for (const variant of variants) {
    const r = await measure(variant, ports[variant], settings.warmup, 0);
    console.log(`warm-up   ${variant.padEnd(9)} ${fixed(r.rps, 0).padStart(6)} req/s`);
  }
  const rounds: Round[] = [];
  for (let round = 1; round <= settings.rounds; round++) {
    for (const variant of inRoundOrder(variants, round)) {
      const r = await measure(variant, ports[variant], settings.duration, round);
      rounds.push(r);
      console.log(
        `round ${round}   ${variant.padEnd(9)} ${fixed(r.rps, 0).padStart(6)} req/s  ` +
          `p50 ${fixed(r.p50, 1)} ms  p99 ${fixed(r.p99, 1)} ms  ` +
          `cpu ${fixed(r.cpuPerRequest, 0)} µs/req  ${r.statuses}  bad ${r.bad}`,
      );
    }
  }

  const { summary, full, pass } = report(rounds, redisVersion, redisSettings, started);
  console.log(`\n${summary.join('\n')}`);
  if (variants.length === VARIANTS.length && settings.rounds >= MIN_ROUNDS_TO_WRITE) {
    writeSection('http', full);
  } else {
    console.log(
      `\n(a partial run — fewer variants or under ${MIN_ROUNDS_TO_WRITE} rounds: ` +
        'the http section of bench/RESULTS.md is left as it was)',
    );
  }
  return pass;
}
