// The soak suite (only when asked for: `npm run bench -- --suite soak`): our runtime
// (bench/noop-worker.ts in offload mode, the app's default concurrency) at half the rate it
// drains, for 10 minutes; its RSS and Redis's memory over time, and lost jobs.
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { Queue } from 'bullmq';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { createQueueOffloader, createRegistry, type JobData } from '../src/offload/index.js';
import { createProducerConnection } from '../src/redis/connections.js';
import {
  fixed,
  header,
  mb,
  median,
  onCleanup,
  start,
  suiteRedis,
  version,
  writeSection,
} from './common.js';
import { noop, noopJob, wallClock } from './noop.js';
import { startNoopWorker } from './peers.js';

const TARGET_RSS_GROWTH = 0.1;
const TARGET_REDIS_GROWTH = 0.1;
const SPEC_MINUTES = 10;
const SAMPLE_MS = 10_000;

export interface SoakOptions {
  minutes: number;
}

interface Sample {
  at: number;
  rss: number;
  redis: number;
  produced: number;
  done: number;
  backlog: number;
}

/** Runs the soak suite; true when nothing was lost and memory stayed flat. */
export async function runSoak({ minutes }: SoakOptions): Promise<boolean> {
  if (!(minutes > 0)) throw new Error('bad soak options: --minutes > 0');
  const started = start();
  const { redis, admin, redisVersion } = await suiteRedis('soak');
  const usedMemory = async () =>
    Number(/used_memory:(\d+)/.exec(await admin.info('memory'))?.[1] ?? NaN);
  const concurrency = loadConfig({}).WORKER_CONCURRENCY;
  const prefix = 'soak';
  const queue = new Queue<JobData>(noop.queue, { connection: admin, prefix });
  onCleanup(() => queue.close());
  const backlog = async () => {
    const counts = await queue.getJobCounts('wait', 'active', 'prioritized', 'delayed');
    return Object.values(counts).reduce((a, b) => a + b, 0);
  };
  const worker = await startNoopWorker('soak', 'offload', { url: redis.url, concurrency, prefix });

  // Its max rate: a drain of 10,000 pre-filled jobs.
  const maxJobs = 10_000;
  await queue.pause();
  for (let i = 0; i < maxJobs; i += 1_000) {
    await queue.addBulk(Array.from({ length: 1_000 }, () => noopJob()));
  }
  const drained = worker.expect(maxJobs);
  const begin = wallClock();
  await queue.resume();
  const maxRate = maxJobs / (((await drained) - begin) / 1000);
  const rate = Math.floor(maxRate / 2);
  console.log(
    `max drain rate ${fixed(maxRate, 0)} jobs/s; soaking at ${rate} jobs/s for ${minutes} min`,
  );

  // The producer: offloader.enqueue on the producer connection, in 10 ms ticks.
  const log = createLogger('warn', 'bench');
  const producer = createProducerConnection(redis.url, log);
  onCleanup(() => producer.disconnect());
  if (producer.status !== 'ready') await once(producer, 'ready');
  const offloader = createQueueOffloader({
    registry: createRegistry([noop]),
    connection: producer,
    eventsConnection: () => {
      throw new Error('not watched');
    },
    prefix,
    log,
  });
  onCleanup(() => offloader.close());
  // Counting from 0 again, with no end: this promise settles only if the worker exits.
  worker.expect(Number.MAX_SAFE_INTEGER).catch(() => undefined);
  let produced = 0;
  let failedEnqueues = 0;
  const samples: Sample[] = [];
  const soakStart = wallClock();
  const end = soakStart + minutes * 60_000;
  let nextSample = soakStart;
  while (wallClock() < end) {
    const due = Math.floor(((wallClock() - soakStart) / 1000) * rate);
    const batch: Promise<unknown>[] = [];
    for (; produced < due; produced++) {
      batch.push(
        offloader.enqueue(noop, {}).catch(() => {
          failedEnqueues += 1;
        }),
      );
    }
    await Promise.all(batch);
    if (wallClock() >= nextSample) {
      nextSample += SAMPLE_MS;
      const sample = {
        at: (wallClock() - soakStart) / 1000,
        rss: await worker.rss(),
        redis: await usedMemory(),
        produced,
        done: await worker.counted(),
        backlog: await backlog(),
      };
      samples.push(sample);
      console.log(
        `${fixed(sample.at, 0).padStart(4)} s  rss ${mb(sample.rss)}  redis ${mb(sample.redis)}  ` +
          `produced ${sample.produced}  done ${sample.done}  backlog ${sample.backlog}`,
      );
    }
    await sleep(10);
  }
  // Let it finish what is queued, then count.
  for (let tries = 0; tries < 300 && (await backlog()) > 0; tries++) await sleep(100);
  await sleep(200);
  const done = await worker.counted();
  const failed = await queue.getFailedCount();
  const exit = await worker.stop();
  const lost = produced - failedEnqueues - done;

  // After warm-up: from the first sample at or past 1 minute (or a tenth of the run). RSS moves
  // with every GC cycle: the medians of the first and of the last three samples are compared.
  const warmAt = samples.findIndex((s) => s.at >= Math.min(60, (minutes * 60) / 10));
  const after = samples.slice(Math.max(0, warmAt));
  const first = after.slice(0, 3);
  const lastThree = after.slice(-3);
  const warm = first[0]!;
  const last = lastThree[lastThree.length - 1]!;
  const growth = (key: 'rss' | 'redis') =>
    median(lastThree.map((s) => s[key])) / median(first.map((s) => s[key])) - 1;
  const rssGrowth = growth('rss');
  const redisGrowth = growth('redis');
  const ok =
    lost === 0 &&
    failed === 0 &&
    failedEnqueues === 0 &&
    exit === 0 &&
    rssGrowth < TARGET_RSS_GROWTH &&
    redisGrowth < TARGET_REDIS_GROWTH;
  const table = [
    '| s | worker RSS | Redis used_memory | produced | run | backlog |',
    '| ---: | ---: | ---: | ---: | ---: | ---: |',
    ...samples
      .filter((_, i) => i % 3 === 0 || i === samples.length - 1)
      .map(
        (s) =>
          `| ${fixed(s.at, 0)} | ${mb(s.rss)} | ${mb(s.redis)} | ${s.produced} | ${s.done} | ${s.backlog} |`,
      ),
    '',
    '| check | value | target | verdict |',
    '| --- | ---: | --- | --- |',
    `| RSS growth after warm-up (median of 3 samples from ${fixed(warm.at, 0)} s → of the last 3, to ${fixed(last.at, 0)} s) | ${fixed(rssGrowth * 100, 1)} % | < 10 % | ${rssGrowth < TARGET_RSS_GROWTH ? 'PASS' : 'FAIL'} |`,
    `| Redis memory growth after warm-up | ${fixed(redisGrowth * 100, 1)} % | flat (< 10 %) | ${redisGrowth < TARGET_REDIS_GROWTH ? 'PASS' : 'FAIL'} |`,
    `| lost jobs (enqueued − run) | ${lost} (of ${produced - failedEnqueues}; failed ${failed}, failed enqueues ${failedEnqueues}) | 0 | ${lost === 0 && failed === 0 && failedEnqueues === 0 ? 'PASS' : 'FAIL'} |`,
  ];
  const full = [
    '## soak: our worker at half its max rate',
    '',
    ...header(
      started,
      `Redis ${redisVersion}, bullmq ${version('bullmq')}, ioredis ${version('ioredis')}`,
    ),
    `- \`npm run bench -- --suite soak\` (not in the default run). bench/noop-worker.ts in offload mode (startRunner with the no-op job, as in the e2e suite; WORKER_CONCURRENCY ${concurrency}, logs at info to /dev/null). Its max rate: a drain of ${maxJobs} pre-filled jobs, ${fixed(maxRate, 0)} jobs/s; then ${rate} jobs/s (half) for ${minutes} min, enqueued with \`offloader.enqueue(noop, {})\` on the producer connection in 10 ms ticks. Sampled every ${SAMPLE_MS / 1000} s: the worker's VmRSS, Redis used_memory (completed jobs are kept up to the retention's 10,000 per queue, so it fills up first, then stays), jobs enqueued and run, backlog. Lost = enqueued − run once the backlog is 0. Worker exit code on SIGTERM: ${String(exit)}.`,
    '',
    ...table,
    '',
  ].join('\n');
  console.log(`\n${table.join('\n')}`);
  if (minutes >= SPEC_MINUTES) writeSection('soak', full);
  else console.log(`\n(under ${SPEC_MINUTES} minutes: RESULTS.md left as it was)`);
  return ok;
}
