// The outbox's relay: committed rows to BullMQ. The fast path adds each row as soon as its
// transaction commits; the loop (in every worker: rows are claimed with FOR UPDATE SKIP LOCKED,
// so several loops never take the same row, and need no leader) picks up, oldest first, what a
// crash between commit and relay, or a Redis outage, left behind. A row's job id is the row's
// id, and BullMQ adds nothing for an id it holds: relaying twice adds one job.
import { setTimeout as sleep } from 'node:timers/promises';
import { Queue, type JobsOptions } from 'bullmq';
import type { Cluster, Redis } from 'ioredis';
import type { JobData } from './types.js';
import { transaction, type Outbox, type OutboxRow } from './outbox.js';
import { jobOptions, RETENTION, type Retention } from './job-options.js';
import type { Registry } from './registry.js';
import type { PooledClient } from './sql.js';

/** What the relay logs: pino's Logger fits. */
interface RelayLog {
  debug(object: object, message: string): void;
  info(object: object, message: string): void;
  warn(object: object, message: string): void;
}

export interface RelayOptions {
  outbox: Outbox;
  /** A connection of the pool, for the loop's transaction (pg's `pool.connect()`). */
  connect: () => Promise<PooledClient>;
  registry: Registry;
  /** A fail-fast producer connection: an add must fail while Redis is away, not wait. */
  connection: Redis | Cluster;
  prefix: string;
  log: RelayLog;
  retention?: Retention;
  /** Run the loop (the worker does); without it, only the fast path (the web process). */
  loop?: boolean;
  /** How often the loop looks for rows left behind. */
  intervalMs?: number;
  /** The loop leaves rows younger than this to the fast path. */
  graceMs?: number;
  batchSize?: number;
  /** The longest wait between tries while Redis (or Postgres) is away. */
  maxBackoffMs?: number;
  /** How long relayed rows are kept before the loop deletes them. */
  keepMs?: number;
  /** Each fast-path batch's lags, commit to job in BullMQ, in ms (for metrics and the bench). */
  onRelayed?: (lagsMs: number[]) => void;
}

export interface Relay {
  /** The fast path: hands committed rows to BullMQ now; a failure leaves them to the loop. */
  relayNow: (rows: OutboxRow[]) => void;
  /** One pass of the loop: relays up to a batch of rows left behind; answers how many. */
  relayLeftBehind(): Promise<number>;
  close(): Promise<void>;
}

export function startRelay(options: RelayOptions): Relay {
  const { outbox, connect, registry, connection, prefix, log } = options;
  const kept = options.retention ?? RETENTION;
  const intervalMs = options.intervalMs ?? 1_000;
  const graceMs = options.graceMs ?? 1_000;
  const batchSize = options.batchSize ?? 100;
  const maxBackoffMs = options.maxBackoffMs ?? 5_000;
  const keepMs = options.keepMs ?? 60_000;

  const queues = new Map<string, Queue<JobData>>();
  const queueOf = (name: string) => {
    let queue = queues.get(name);
    if (!queue) {
      queue = new Queue<JobData>(name, { connection, prefix });
      queue.on('error', () => undefined); // the add that meets it fails, and says so
      queues.set(name, queue);
    }
    return queue;
  };

  /** Adds rows to their queues (one addBulk per queue); throws if any add fails. */
  async function add(rows: readonly OutboxRow[]): Promise<void> {
    if (connection.status !== 'ready') throw new Error('Redis is not connected');
    const byQueue = new Map<string, { name: string; data: JobData; opts: JobsOptions }[]>();
    const now = Date.now();
    for (const row of rows) {
      const job = registry.get(row.name);
      if (!job) {
        // A job removed from the code while its rows waited: nothing can run it.
        log.warn({ jobId: row.id, job: row.name }, 'outbox row for an unknown job: dropped');
        continue;
      }
      const opts: JobsOptions = { ...jobOptions(job, kept), jobId: row.id };
      if (row.opts.runAt && row.opts.runAt > now) opts.delay = row.opts.runAt - now;
      if (row.opts.priority) opts.priority = row.opts.priority;
      if (row.opts.lifo) opts.lifo = true;
      let batch = byQueue.get(job.queue);
      if (!batch) byQueue.set(job.queue, (batch = []));
      batch.push({ name: job.name, data: row.data, opts });
    }
    await Promise.all([...byQueue].map(([name, batch]) => queueOf(name).addBulk(batch)));
  }

  // The fast path: rows committed in the same tick go in one addBulk and one UPDATE.
  let waiting: OutboxRow[] = [];
  const flushing = new Set<Promise<void>>();
  function relayNow(rows: OutboxRow[]) {
    if (waiting.length === 0) setImmediate(flush);
    waiting.push(...rows);
  }
  function flush() {
    const rows = waiting;
    waiting = [];
    if (rows.length === 0) return;
    const done = (async () => {
      try {
        await add(rows);
      } catch (error) {
        log.debug({ err: error, rows: rows.length }, 'outbox fast path failed: the loop relays');
        return;
      }
      const now = Date.now();
      options.onRelayed?.(rows.map((row) => now - (row.committedAt ?? now)));
      await outbox.markRelayed(rows.map((row) => row.id)).catch((error: unknown) => {
        // In BullMQ already: the loop will add them again, which adds nothing.
        log.debug({ err: error }, 'outbox rows relayed but not marked');
      });
    })();
    flushing.add(done);
    void done.finally(() => flushing.delete(done));
  }

  async function relayLeftBehind(): Promise<number> {
    const client = await connect();
    try {
      const found = await transaction(client, async (tx) => {
        const rows = await outbox.leftBehind(tx, graceMs, batchSize);
        if (rows.length > 0) {
          await add(rows);
          await outbox.markRelayed(
            rows.map((row) => row.id),
            tx,
          );
        }
        return rows.length;
      });
      if (found > 0) log.info({ rows: found }, 'outbox rows relayed by the loop');
      return found;
    } finally {
      client.release();
    }
  }

  const stop = new AbortController();
  let loop: Promise<void> = Promise.resolve();
  if (options.loop) {
    loop = (async () => {
      let failures = 0;
      let sweptAt = 0;
      while (!stop.signal.aborted) {
        if (connection.status !== 'ready') {
          // Not a failure to report: the connection says Redis is away (and when it is back,
          // which ends this pause). Rows wait in the outbox meanwhile.
          await pause(maxBackoffMs);
          continue;
        }
        let relayed = 0;
        try {
          relayed = await relayLeftBehind();
          if (Date.now() - sweptAt > keepMs / 2) {
            sweptAt = Date.now();
            await outbox.sweep(keepMs);
          }
          failures = 0;
        } catch (error) {
          failures++;
          if (failures === 1)
            log.warn({ err: error }, 'outbox relay failed: retrying with backoff');
        }
        // Backoff while something is away (with jitter, so several loops spread out); at once
        // when a batch was full; else the interval.
        const backoff = Math.min(maxBackoffMs, 100 * 2 ** failures) * (0.8 + Math.random() * 0.4);
        const wait = failures ? backoff : relayed >= batchSize ? 0 : intervalMs;
        await pause(wait);
      }
    })();
  }

  /** Sleeps `ms`, cut short by close() or by Redis coming back. */
  async function pause(ms: number) {
    if (ms === 0) return;
    const back = new AbortController();
    const onReady = () => back.abort();
    connection.once('ready', onReady);
    const signal = AbortSignal.any([stop.signal, back.signal]);
    await sleep(ms, undefined, { signal }).catch(() => undefined);
    connection.off('ready', onReady);
  }

  return {
    relayNow,
    relayLeftBehind,
    async close() {
      stop.abort();
      flush();
      await loop;
      await Promise.all(flushing);
      await Promise.all([...queues.values()].map((queue) => queue.close()));
    },
  };
}
