// The producer suite: jobs/s enqueued from one process, no HTTP: a bare BullMQ `queue.add` (1
// and 100 in flight), a bare `addBulk`, and our `offloader.enqueue` in the same modes. The job
// is the app's send-email (welcome), as in the http suite. Run by bench/run.ts
// (`npm run bench -- --suite producer`).
import { randomBytes, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { sendEmail } from '../jobs/index.js';
import { connectOffloader, quit, registry } from '../src/process/boot.js';
import { loadConfig } from '../src/config.js';
import { closeDeps, createDeps } from '../src/deps.js';
import { createLogger } from '../src/logger.js';
import { createQueueOffloader, jobOptions, type JobData } from '../src/offload/index.js';
import { PRODUCER_COMMAND_TIMEOUT_MS } from '../src/redis/connections.js';
import {
  fixed,
  header,
  median,
  roundRatio,
  MIN_ROUNDS_TO_WRITE,
  onCleanup,
  start,
  suiteRedis,
  version,
  writeSection,
  inRoundOrder,
} from './common.js';

const TARGET = 0.95;
const INPUT = { template: 'welcome', to: 'ada@example.com', name: 'Ada Lovelace' } as const;
const MODES = [
  'bare add ×1',
  'offload enqueue ×1',
  'bare add ×100',
  'offload enqueue ×100',
  'bare addBulk 100',
  'offload enqueueMany 100',
  'offload ×100, autopipelined connection',
] as const;
type Mode = (typeof MODES)[number];
/** Each offload mode's bare baseline. */
const BASELINE: Partial<Record<Mode, Mode>> = {
  'offload enqueue ×1': 'bare add ×1',
  'offload enqueue ×100': 'bare add ×100',
  'offload enqueueMany 100': 'bare addBulk 100',
  'offload ×100, autopipelined connection': 'bare add ×100',
};

export interface ProducerOptions {
  rounds: number;
  /** Jobs per mode per round. */
  jobs: number;
}

interface Round {
  mode: Mode;
  round: number;
  rate: number;
  commands: number;
}

/** Calls `add(i)` for i < count, `inFlight` at a time. */
async function lanes(count: number, inFlight: number, add: (i: number) => Promise<unknown>) {
  let next = 0;
  const lane = async () => {
    for (let i = next++; i < count; i = next++) await add(i);
  };
  await Promise.all(Array.from({ length: inFlight }, lane));
}

/** Runs the producer suite; true when the run is valid and every target is met. */
export async function runProducer(options: ProducerOptions): Promise<boolean> {
  const { rounds, jobs } = options;
  if (!(Number.isInteger(rounds) && rounds >= 1 && Number.isInteger(jobs) && jobs >= 100)) {
    throw new Error('bad producer options: --rounds ≥ 1, --producer-jobs ≥ 100');
  }
  const started = start();
  const { redis, admin, redisVersion } = await suiteRedis('producer');
  const redisSettings = await admin.config('GET', 'appendonly', 'appendfsync', 'maxmemory-policy');

  // bare: a plain ioredis connection and a Queue, as bench/servers.ts's bare-add route has.
  const bareConnection = new Redis(redis.url, { maxRetriesPerRequest: null });
  onCleanup(() => quit(bareConnection));
  const bare = new Queue<JobData>(sendEmail.queue, { connection: bareConnection, prefix: 'bare' });
  onCleanup(() => bare.close());
  const options_ = jobOptions(sendEmail);
  const bareJob = () => ({
    name: sendEmail.name,
    data: { input: INPUT },
    opts: { ...options_, jobId: randomUUID() },
  });

  // offload: wired as src/web.ts wires it (the fail-fast producer connection).
  const config = loadConfig({
    REDIS_URL: redis.url,
    QUEUE_PREFIX: 'bench',
    OFFLOAD_MODE: 'queue',
    SIGNING_SECRET: randomBytes(32).toString('base64url'),
    LOG_LEVEL: 'warn',
  });
  const log = createLogger(config.LOG_LEVEL, 'bench');
  const deps = createDeps(config);
  onCleanup(() => closeDeps(deps));
  const { offloader, connection } = connectOffloader(config, log, deps);
  onCleanup(() => quit(connection));
  onCleanup(() => offloader.close());
  // The experiment: the same producer connection options plus ioredis auto-pipelining.
  const pipelined = new Redis(redis.url, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: PRODUCER_COMMAND_TIMEOUT_MS,
    connectTimeout: PRODUCER_COMMAND_TIMEOUT_MS,
    enableAutoPipelining: true,
  });
  onCleanup(() => quit(pipelined));
  const pipelinedOffloader = createQueueOffloader({
    registry,
    connection: pipelined,
    eventsConnection: () => {
      throw new Error('not watched');
    },
    prefix: 'piped',
    log,
  });
  onCleanup(() => pipelinedOffloader.close());
  for (const c of [connection, pipelined]) if (c && c.status !== 'ready') await once(c, 'ready');
  await Promise.all([bare.waitUntilReady(), offloader.ping(), pipelinedOffloader.ping()]);

  const run: Record<Mode, (count: number) => Promise<unknown>> = {
    'bare add ×1': (count) =>
      lanes(count, 1, () => {
        const { name, data, opts } = bareJob();
        return bare.add(name, data, opts);
      }),
    'offload enqueue ×1': (count) => lanes(count, 1, () => offloader.enqueue(sendEmail, INPUT)),
    'bare add ×100': (count) =>
      lanes(count, 100, () => {
        const { name, data, opts } = bareJob();
        return bare.add(name, data, opts);
      }),
    'offload enqueue ×100': (count) => lanes(count, 100, () => offloader.enqueue(sendEmail, INPUT)),
    'bare addBulk 100': async (count) => {
      for (let i = 0; i < count; i += 100) {
        await bare.addBulk(Array.from({ length: Math.min(100, count - i) }, bareJob));
      }
    },
    'offload enqueueMany 100': async (count) => {
      for (let i = 0; i < count; i += 100) {
        await offloader.enqueueMany(
          sendEmail,
          Array.from({ length: Math.min(100, count - i) }, () => INPUT),
        );
      }
    },
    'offload ×100, autopipelined connection': (count) =>
      lanes(count, 100, () => pipelinedOffloader.enqueue(sendEmail, INPUT)),
  };

  async function measure(mode: Mode, round: number, count: number): Promise<Round> {
    await admin.flushall('SYNC'); // every mode starts from an empty Redis
    await sleep(100);
    await admin.config('RESETSTAT');
    const begin = performance.now();
    await run[mode](count);
    const seconds = (performance.now() - begin) / 1000;
    const stats = await admin.info('commandstats');
    const calls = [...stats.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)]
      .filter(([, name]) => !['flushall', 'info', 'config|resetstat'].includes(name!))
      .reduce((sum, [, , n]) => sum + Number(n), 0);
    const prefix = mode.startsWith('bare')
      ? 'bare'
      : mode.includes('pipelined')
        ? 'piped'
        : 'bench';
    const stored = await admin.llen(`${prefix}:${sendEmail.queue}:wait`);
    if (stored !== count) throw new Error(`${mode}: ${stored} of ${count} jobs in Redis`);
    return { mode, round, rate: count / seconds, commands: calls / count };
  }
  const show = (r: Round) =>
    console.log(
      `${r.round ? `round ${r.round}` : 'warm-up'}  ${r.mode.padEnd(40)} ` +
        `${fixed(r.rate, 0).padStart(7)} jobs/s  ${fixed(r.commands, 1)} cmds/job`,
    );

  for (const mode of MODES) show(await measure(mode, 0, Math.min(jobs, 2_000)));
  const results: Round[] = [];
  for (let round = 1; round <= rounds; round++) {
    for (const mode of inRoundOrder(MODES, round)) {
      const r = await measure(mode, round, jobs);
      results.push(r);
      show(r);
    }
  }

  const med = (mode: Mode) => median(results.filter((r) => r.mode === mode).map((r) => r.rate));
  let pass = true;
  const table = [
    '| mode | jobs/s (median) | rounds | Redis cmds/job | × its bare baseline (median of per-round ratios) | target | verdict |',
    '| --- | ---: | --- | ---: | ---: | --- | --- |',
  ];
  for (const mode of MODES) {
    const mine = results.filter((r) => r.mode === mode);
    const baseline = BASELINE[mode];
    const ratio = baseline
      ? roundRatio(
          results,
          (r) => r.mode === mode,
          (r) => r.mode === baseline,
          (r) => r.rate,
        )
      : undefined;
    const targeted = baseline && !mode.includes('pipelined');
    const ok = ratio !== undefined && ratio >= TARGET;
    if (targeted) pass &&= ok;
    table.push(
      `| ${mode} | ${fixed(med(mode), 0)} | ${mine.map((r) => fixed(r.rate, 0)).join(', ')} | ` +
        `${fixed(median(mine.map((r) => r.commands)), 1)} | ` +
        `${ratio === undefined ? '—' : `${fixed(ratio)}× (vs ${baseline})`} | ` +
        `${targeted ? `≥ ${TARGET}×` : baseline ? '(experiment)' : '(baseline)'} | ` +
        `${targeted ? (ok ? 'PASS' : 'FAIL') : '—'} |`,
    );
  }
  const full = [
    '## producer: jobs/s enqueued from one process, no HTTP',
    '',
    ...header(
      started,
      `Redis ${redisVersion}, bullmq ${version('bullmq')}, ioredis ${version('ioredis')}, zod ${version('zod')}`,
    ),
    `- Redis: private redis-server (test/harness/redis.ts), \`${redisSettings.join(' ')}\`, flushed before every measurement; commands per job from INFO commandstats (Lua-internal calls included).`,
    '- The job: send-email `{template: welcome, to, name}` with the app’s job options (attempts, backoff, retention) and a random UUID id, as the http suite’s routes add it. `bare` = `queue.add` / `queue.addBulk` on a plain ioredis connection (as bench/servers.ts’s bare-add route); `offload` = `offloader.enqueue(sendEmail, input)` wired as src/web.ts wires it (validation, registry check, the fail-fast producer connection with its 1 s command timeout). ×1 = one at a time; ×100 = 100 in flight; addBulk / enqueueMany = batches of 100 (`offloader.enqueueMany`: every input validated, then one `addBulk`).',
    '- `offload ×100, autopipelined connection` is an experiment, not the app: the producer connection’s options plus ioredis `enableAutoPipelining: true` (src/redis/connections.ts does not set it).',
    `- ${jobs} jobs per mode per round (2,000 in a warm-up pass per mode), then ${rounds} interleaved rounds.`,
    '',
    '### Summary (medians over rounds)',
    '',
    'Absolute numbers on a shared 2-core machine are noise; the ratios are the result.',
    '',
    ...table,
    '',
    'Valid run: every job of every measurement was in Redis afterwards.',
    '',
  ].join('\n');
  console.log(`\n${table.join('\n')}`);
  if (rounds >= MIN_ROUNDS_TO_WRITE) writeSection('producer', full);
  else console.log(`\n(under ${MIN_ROUNDS_TO_WRITE} rounds: RESULTS.md left as it was)`);
  return pass;
}
