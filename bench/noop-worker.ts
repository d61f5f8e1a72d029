// A worker process running the bench's no-op job (bench/noop.ts), forked with an IPC channel by
// the end-to-end, pickup and soak suites. BENCH_MODE picks what consumes the queue:
//   offload  our runtime: src/offload/runner.ts's startRunner wired as src/process/boot.ts's
//            startWorkers does it (worker connection, the config's defaults for lock, stalled
//            interval, retention and rate limits, pino at info to stdout), with a registry of
//            the one no-op job instead of jobs/index.ts. So every job goes through the runner's
//            process(): registry lookup, child logger, cancel and expiry checks, "job started",
//            runJob (input re-validated, time limit), "job completed".
//   bare     a bare BullMQ Worker with the same concurrency and a plain async processor.
//   bare-logged  the same, plus the two log lines the runner writes per job ("job started",
//            "job completed", on a child logger with the same fields), to stdout: what logging
//            alone costs, apart from the rest of the runtime.
//   bee      a bee-queue worker (its defaults) with the same concurrency.
// Env: BENCH_REDIS_URL, BENCH_MODE, BENCH_CONCURRENCY, BENCH_PREFIX (BullMQ prefix) or
// BENCH_QUEUE (bee-queue's queue name). It answers the messages of bench/noop.ts and leaves on
// SIGTERM.
import BeeQueue from 'bee-queue';
import { Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { quit, tlsOf } from '../src/process/boot.js';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { createRegistry, retention, startRunner } from '../src/offload/index.js';
import type { JobData } from '../src/offload/index.js';
import { createWorkerConnection } from '../src/redis/connections.js';
import { telemetry } from '../src/process/telemetry-hooks.js';
import { hooks, noop, wallClock, type FromWorker, type NoopInput, type ToWorker } from './noop.js';

const { BENCH_REDIS_URL: url, BENCH_MODE: mode, BENCH_CONCURRENCY } = process.env;
const concurrency = Number(BENCH_CONCURRENCY);
const prefix = process.env.BENCH_PREFIX ?? 'bench';
if (!url || !mode || !Number.isInteger(concurrency) || !process.send) {
  throw new Error('forked by the bench with BENCH_REDIS_URL, BENCH_MODE, BENCH_CONCURRENCY');
}
const send = (message: FromWorker) => process.send?.(message);

// What every mode does per job: count it, note its pickup latency, say when the round is done.
let count = 0;
let expected = Infinity;
let latencies: number[] = [];
hooks.onRun = (input: NoopInput) => {
  if (input.t !== undefined) latencies.push(wallClock() - input.t);
  count += 1;
  if (count === expected) send({ type: 'drained', at: wallClock() });
};
process.on('message', (message: ToWorker) => {
  switch (message.type) {
    case 'expect':
      count = 0;
      expected = message.count;
      break;
    case 'latencies':
      send({ type: 'latencies', values: latencies });
      latencies = [];
      break;
    case 'counted':
      send({ type: 'counted', count });
      break;
  }
});

let close: () => Promise<void>;
switch (mode) {
  case 'offload': {
    const config = loadConfig({
      REDIS_URL: url,
      QUEUE_PREFIX: prefix,
      WORKER_CONCURRENCY: String(concurrency),
      LOG_LEVEL: 'info',
    });
    const log = createLogger(config.LOG_LEVEL, 'worker');
    const connection = createWorkerConnection(config.REDIS_URL, log, tlsOf(config));
    const runner = startRunner({
      registry: createRegistry([noop]),
      queues: config.WORKER_QUEUES,
      connection,
      prefix: config.QUEUE_PREFIX,
      concurrency: { default: config.WORKER_CONCURRENCY, queues: config.QUEUE_CONCURRENCY },
      rateLimits: config.QUEUE_RATE_LIMIT,
      retention: retention(config.RESULT_TTL, config.FAILED_TTL),
      lockMs: config.WORKER_LOCK_MS,
      stalledIntervalMs: config.WORKER_STALLED_INTERVAL_MS,
      deps: {},
      log,
      // Set when started with the tracing preload and OTEL_* variables (e2e's offload+tracing).
      tracing: telemetry()?.jobs,
    });
    await runner.schedules; // settles once Redis answered
    close = async () => {
      await runner.close(Date.now() + 5_000);
      await quit(connection);
    };
    break;
  }
  case 'bare':
  case 'bare-logged': {
    const connection = new Redis(url, { maxRetriesPerRequest: null });
    const log = mode === 'bare-logged' ? createLogger('info', 'worker') : undefined;
    const worker = new Worker<JobData>(
      noop.name,
      (job) => {
        const started = Date.now();
        const jobLog = log?.child({
          jobId: job.id,
          job: job.name,
          reqId: job.data.requestId,
          attempt: job.attemptsStarted,
        });
        jobLog?.info({ waitedMs: started - job.timestamp }, 'job started');
        hooks.onRun(job.data.input as NoopInput);
        jobLog?.info({ durationMs: Date.now() - started }, 'job completed');
        return Promise.resolve(null);
      },
      { connection, prefix, concurrency },
    );
    worker.on('error', (error) => console.error('bare worker:', error));
    await worker.waitUntilReady();
    close = async () => {
      await worker.close();
      await quit(connection);
    };
    break;
  }
  case 'bee': {
    const queue = new BeeQueue<NoopInput>(process.env.BENCH_QUEUE ?? 'noop', {
      redis: { url },
      isWorker: true,
      getEvents: false,
    });
    queue.on('error', (error) => console.error('bee-queue worker:', error));
    await queue.ready();
    queue.process(concurrency, (job) => {
      hooks.onRun(job.data);
      return Promise.resolve(null);
    });
    close = async () => {
      await queue.close();
    };
    break;
  }
  default:
    throw new Error(`BENCH_MODE must be offload, bare, bare-logged or bee, not ${mode}`);
}
send({ type: 'ready' });

process.on('SIGTERM', () => {
  close().then(
    () => process.exit(0),
    (error: unknown) => {
      console.error('noop worker: close failed', error);
      process.exit(1);
    },
  );
});
process.on('SIGINT', () => undefined); // Ctrl-C reaches the whole group; the parent ends us.
process.channel?.unref();
