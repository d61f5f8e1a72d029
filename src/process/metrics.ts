// Prometheus metrics for GET /metrics: HTTP requests, jobs by name, and the queues themselves.
import { setTimeout as sleep } from 'node:timers/promises';
import { Job, type Queue } from 'bullmq';
import type { RequestHandler } from 'express';
import type { Cluster, Redis } from 'ioredis';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Logger } from '../logger.js';
import type { JobData } from '../offload/index.js';
import { isConnectionError } from '../redis/connections.js';

/** BullMQ's job counts, as the `state` label of offload_queue_jobs. */
const STATES = [
  'waiting',
  'prioritized',
  'waiting-children',
  'delayed',
  'active',
  'completed',
  'failed',
] as const;

export interface Metrics {
  readonly registry: Registry;
  /** Times every request (the route's pattern as a label, never the raw URL). */
  readonly httpMetrics: RequestHandler;
  /** Settles once the job event listeners are connected (tests wait for it). */
  readonly ready: Promise<void>;
  close(): Promise<void>;
}

export interface MetricsOptions {
  /** The queues to measure (none in inline mode), on a fail-fast producer connection. */
  queues: readonly Queue[];
  /** A blocking connection for one queue's event stream (see src/redis/connections.ts). */
  eventsConnection: () => Redis | Cluster;
  /** False while Redis is away: BullMQ would wait for it, and a scrape must not hang. */
  connected: () => boolean;
  log: Logger;
}

/**
 * Job counters and histograms are counted from each queue's event stream, so the web process can serve them whichever worker ran the job. Every web
 * process sees every job: with several, aggregate them with max, not sum. Queue depth and
 * latency are read from Redis at each scrape, the same from any process.
 */
export function createMetrics(options: MetricsOptions): Metrics {
  const { queues, eventsConnection, log } = options;
  const eachQueue = (read: (queue: Queue) => Promise<void>) => readQueues(options, read);
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });

  const httpDuration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request durations, by method, route pattern and status',
    labelNames: ['method', 'route', 'status'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const completed = new Counter({
    name: 'offload_jobs_completed_total',
    help: 'Jobs completed, by job name',
    labelNames: ['name'],
    registers: [registry],
  });
  const failed = new Counter({
    name: 'offload_jobs_failed_total',
    help: 'Jobs failed for good (after their retries), by job name',
    labelNames: ['name'],
    registers: [registry],
  });
  const dropped = new Counter({
    name: 'offload_jobs_dropped_total',
    help: 'Jobs cancelled or expired (not failures), by job name and state',
    labelNames: ['name', 'state'],
    registers: [registry],
  });
  const jobBuckets = [0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300];
  const runTime = new Histogram({
    name: 'offload_job_run_seconds',
    help: 'Time a job ran (its last attempt), by job name and final state',
    labelNames: ['name', 'outcome'],
    buckets: jobBuckets,
    registers: [registry],
  });
  const waitTime = new Histogram({
    name: 'offload_job_wait_seconds',
    help: 'Time a job waited in its queue before its last attempt started (after any delay), by job name',
    labelNames: ['name'],
    buckets: jobBuckets,
    registers: [registry],
  });

  new Gauge({
    name: 'offload_queue_jobs',
    help: 'Jobs in each queue, by state',
    labelNames: ['queue', 'state'],
    registers: [registry],
    async collect() {
      this.reset();
      await eachQueue(async (queue) => {
        const counts = await queue.getJobCounts(...STATES);
        for (const state of STATES) this.set({ queue: queue.name, state }, counts[state] ?? 0);
      });
    },
  });
  new Gauge({
    name: 'offload_queue_latency_seconds',
    help: 'Age of the oldest job waiting to run, per queue (0 when none waits): what an autoscaler should watch',
    labelNames: ['queue'],
    registers: [registry],
    async collect() {
      this.reset();
      const now = Date.now();
      await eachQueue(async (queue) => {
        this.set({ queue: queue.name }, (await oldestWaitingMs(queue, now)) / 1000);
      });
    },
  });

  const observe = async (queue: Queue, jobId: string, event: 'completed' | 'failed') => {
    const job = await Job.fromId(queue, jobId);
    if (!job) return; // already removed: nothing to time
    const name = job.name;
    // BullMQ fails cancelled and expired jobs too; the offloader marks them in the data.
    const outcome = event === 'failed' ? ((job.data as JobData).outcome ?? 'failed') : event;
    if (outcome === 'completed') completed.inc({ name });
    else if (outcome === 'failed') failed.inc({ name });
    else dropped.inc({ name, state: outcome });
    if (job.processedOn !== undefined && job.finishedOn !== undefined) {
      runTime.observe({ name, outcome }, (job.finishedOn - job.processedOn) / 1000);
      const due = job.timestamp + (job.delay || 0);
      waitTime.observe({ name }, Math.max(0, job.processedOn - due) / 1000);
    }
  };
  const reader = queues.length > 0 ? eventsConnection() : undefined;
  const reading = reader
    ? followEvents(reader, queues, log, (queue, event, jobId) => {
        if (event !== 'completed' && event !== 'failed') return;
        observe(queue, jobId, event).catch((error: unknown) => {
          log.debug({ err: error, jobId }, 'job metrics not recorded');
        });
      })
    : undefined;

  return {
    registry,
    ready: reading?.ready ?? Promise.resolve(),
    httpMetrics(req, res, next) {
      const stop = httpDuration.startTimer();
      res.once('finish', () => {
        // Set by the router that matched; unmatched requests (404s, static files) share a label.
        const route = (req.route as { path?: unknown } | undefined)?.path;
        stop({
          method: req.method,
          route: typeof route === 'string' ? req.baseUrl + route : '(no route)',
          status: res.statusCode,
        });
      });
      next();
    },
    async close() {
      await reading?.stop();
    },
  };
}

/** The pause between two reads of the job event streams: see followEvents. */
const BATCH_MS = 250;

/**
 * Reads the queues' event streams (what BullMQ's QueueEvents reads) on one blocking connection,
 * from now on (a stream id is a ms timestamp), so an event while it connects is not missed.
 * Hand-rolled rather than one QueueEvents per queue: one connection for all queues, and it
 * closes at once even when Redis never came up (QueueEvents' close then waits for it).
 */
function followEvents(
  redis: Redis | Cluster,
  queues: readonly Queue[],
  log: Logger,
  onEvent: (queue: Queue, event: string, jobId: string) => void,
): { ready: Promise<void>; stop(): Promise<void> } {
  const keys = queues.map((queue) => `${queue.opts.prefix ?? 'bull'}:${queue.name}:events`);
  const ids = keys.map(() => `${Date.now()}-0`);
  const stopping = new AbortController();
  const stopped = () => stopping.signal.aborted;
  const stoppedNow = new Promise<null>((resolve) => {
    stopping.signal.addEventListener('abort', () => resolve(null), { once: true });
  });
  const ready = new Promise<void>((resolve) => {
    if (redis.status === 'ready') resolve();
    else redis.once('ready', () => resolve());
  });
  const loop = (async () => {
    while (!stopped()) {
      try {
        // ioredis leaves a command queued while reconnecting even after disconnect(): race it.
        const reply = await Promise.race([
          redis.xread('BLOCK', 5_000, 'STREAMS', ...keys, ...ids),
          stoppedNow,
        ]);
        for (const [key, entries] of reply ?? []) {
          const index = keys.indexOf(key);
          const queue = queues[index];
          if (!queue) continue;
          for (const [id, fields] of entries) {
            ids[index] = id;
            const field = (name: string) => fields[fields.indexOf(name) + 1];
            const event = field('event');
            const jobId = field('jobId');
            if (event && jobId) onEvent(queue, event, jobId);
          }
        }
        // Let events pile up between reads: under load, one read every BATCH_MS instead of one
        // per enqueue (each job writes 2–5 events). Metrics can wait that long; the stream keeps
        // BullMQ's last 10,000 events, so only beyond ~10,000 events per BATCH_MS are some missed.
        if (reply) await Promise.race([sleep(BATCH_MS, undefined, { ref: false }), stoppedNow]);
      } catch (error) {
        if (stopped()) break;
        if (!isConnectionError(error)) log.warn({ err: error }, 'queue events not read');
        await sleep(1_000, undefined, { ref: false }); // no busy loop on a persistent error
      }
    }
  })();
  return {
    ready,
    async stop() {
      stopping.abort();
      redis.disconnect(); // interrupts the blocking read
      await loop;
    },
  };
}

/**
 * How long the oldest ready job has waited, in ms: the end of the `wait` list (BullMQ pushes
 * new jobs on the left) and the next prioritized job. A delayed job counts from when it was due.
 */
export async function oldestWaitingMs(queue: Queue, now: number): Promise<number> {
  const jobs = [
    ...(await queue.getJobs(['wait'], 0, 0, true)),
    ...(await queue.getJobs(['prioritized'], 0, 0, true)),
  ];
  return Math.max(0, ...jobs.map((job) => now - job.timestamp - (job.delay || 0)));
}

/** Runs `read` for every queue; while Redis is away the queue gauges are left empty. */
async function readQueues(
  { queues, connected, log }: MetricsOptions,
  read: (queue: Queue) => Promise<void>,
): Promise<void> {
  if (!connected()) return;
  try {
    await Promise.all(queues.map(read));
  } catch (error) {
    if (!isConnectionError(error)) log.warn({ err: error }, 'queue metrics not read');
  }
}
