// The transactional outbox: a job recorded in the caller's database transaction, with the data
// it is about, so a commit always gets its job and a rollback never does. After the commit the
// row is handed to BullMQ at once (the fast path, relay.ts); a relay loop picks up whatever a
// crash or a Redis outage left behind. No Postgres client is imported: anything with `query`
// (pg's Client, PoolClient or Pool; PGlite) will do.
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseInput } from './define.js';
import { InvalidEnqueueOptionsError, QueueUnavailableError } from './errors.js';
import type { Accepted, AnyJob, EnqueueOptions, JobData, JobStatus, Offloader } from './types.js';
import type { Registry } from './registry.js';
import type { SqlClient } from './sql.js';
import { timing } from './timing.js';

/** The table's default name (see migrations/ for its shape). */
export const OUTBOX_TABLE = 'offload_outbox';

/** One recorded job: what the relay adds to BullMQ, as it was validated at enqueue. */
export interface OutboxRow {
  id: string;
  name: string;
  data: JobData;
  opts: { runAt?: number; priority?: number; lifo?: boolean };
  /** When its transaction committed, in this process (epoch ms): the relay's lag starts here. */
  committedAt?: number;
}

// What runs after a transaction commits: registered by `enqueue(…, { tx })`, run by
// `transaction()`. Keyed by the transaction's client, so any client type works.
const afterCommit = new WeakMap<SqlClient, (() => void)[]>();

/**
 * Runs `fn` in a transaction on `client` (one connection: a pg Client or PoolClient, PGlite):
 * BEGIN, `fn(client)`, COMMIT, then what its enqueues asked for after the commit (the relay's
 * fast path; inline mode's runs). An error (or a throw in `fn`) rolls back: no job.
 */
export async function transaction<T>(
  client: SqlClient,
  fn: (tx: SqlClient) => Promise<T>,
): Promise<T> {
  const hooks: (() => void)[] = [];
  afterCommit.set(client, hooks);
  try {
    await client.query('BEGIN');
    let result: T;
    try {
      result = await fn(client);
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined); // a broken connection rolls back
      throw error;
    }
    for (const hook of hooks) hook();
    return result;
  } finally {
    afterCommit.delete(client);
  }
}

/** How often a watch on a job still in the outbox looks whether it was relayed. */
const RELAYED_POLL_MS = 100;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The outbox table: recording, looking up and marking rows. */
export interface Outbox {
  /** Records a row in `tx` (the caller's transaction). */
  insert(tx: SqlClient, row: OutboxRow): Promise<void>;
  /** An unrelayed row's name and age, or null (relayed, or never committed). */
  pending(id: string): Promise<{ name: string; createdAt: Date } | null>;
  /**
   * Takes up to `limit` unrelayed rows older than `graceMs`, oldest first, locked in `tx` and
   * skipped by every other transaction (so several relay loops never take the same row).
   */
  leftBehind(tx: SqlClient, graceMs: number, limit: number): Promise<OutboxRow[]>;
  /** Marks rows relayed, through `via` (default: the pool); `sweep` deletes them later. */
  markRelayed(ids: readonly string[], via?: SqlClient): Promise<void>;
  /** Deletes rows relayed more than `keepMs` ago; answers how many. */
  sweep(keepMs: number): Promise<number>;
  /** How many rows wait to be relayed, and the oldest's age in seconds (0 when none). */
  depth(): Promise<{ depth: number; oldestAgeSeconds: number }>;
}

/** The outbox in `table`, read and marked through `db` (a pool: any connection will do). */
export function createOutbox({ db, table = OUTBOX_TABLE }: { db: SqlClient; table?: string }) {
  if (!/^[a-z_][a-z0-9_]*$/.test(table)) throw new Error(`not a plain table name: ${table}`);
  const outbox: Outbox = {
    async insert(tx, row) {
      await tx.query(`INSERT INTO ${table} (id, name, data, opts) VALUES ($1, $2, $3, $4)`, [
        row.id,
        row.name,
        JSON.stringify(row.data),
        JSON.stringify(row.opts),
      ]);
    },
    async pending(id) {
      const { rows } = await db.query(
        `SELECT name, created_at FROM ${table} WHERE id = $1 AND relayed_at IS NULL`,
        [id],
      );
      const row = rows[0] as { name: string; created_at: Date | string } | undefined;
      return row ? { name: row.name, createdAt: new Date(row.created_at) } : null;
    },
    async leftBehind(tx, graceMs, limit) {
      const { rows } = await tx.query(
        `SELECT id, name, data, opts FROM ${table}
          WHERE relayed_at IS NULL AND created_at < now() - make_interval(secs => $1)
          ORDER BY seq LIMIT $2 FOR UPDATE SKIP LOCKED`,
        [graceMs / 1000, limit],
      );
      return rows as OutboxRow[];
    },
    async markRelayed(ids, via = db) {
      if (ids.length === 0) return;
      await via.query(
        `UPDATE ${table} SET relayed_at = now() WHERE id = ANY($1::uuid[]) AND relayed_at IS NULL`,
        [ids],
      );
    },
    async sweep(keepMs) {
      const { rows } = await db.query(
        `DELETE FROM ${table} WHERE relayed_at < now() - make_interval(secs => $1) RETURNING id`,
        [keepMs / 1000],
      );
      return rows.length;
    },
    async depth() {
      const { rows } = await db.query(
        `SELECT count(*)::int AS depth,
                coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8 AS age
           FROM ${table} WHERE relayed_at IS NULL`,
      );
      const row = rows[0] as { depth: number; age: number } | undefined;
      return { depth: row?.depth ?? 0, oldestAgeSeconds: Math.max(0, row?.age ?? 0) };
    },
  };
  return outbox;
}

/** What only an outbox job can take: the rest is refused (not ignored) with a `tx`. */
const NOT_WITH_TX = ['key', 'fingerprint', 'children', 'progressTotal'] as const;

export interface TransactionalOptions {
  registry: Registry;
  /** The outbox (queue and embedded modes); none inline, where the job runs after the commit. */
  outbox?: Outbox | undefined;
  /** Hands committed rows to BullMQ at once (relay.ts's `relayNow`); the loop does the rest. */
  relayNow?: ((rows: OutboxRow[]) => void) | undefined;
}

/**
 * `offloader` with `enqueue(job, input, { tx })`: the job is recorded in the caller's
 * transaction (which `transaction()` runs), and its status reads `waiting` until it is relayed.
 * Inline, the job runs after the commit instead. Without an outbox in queue mode, `tx` is
 * refused: enqueueing in Redis inside a transaction is the dual write this module avoids.
 */
export function withOutbox(offloader: Offloader, options: TransactionalOptions): Offloader {
  const { registry, outbox, relayNow } = options;
  // Inline: the id answered before the commit → its job's name and the id its run got.
  const ranAs = new Map<string, { name: string; ran?: string }>();

  function record(job: AnyJob, input: unknown, o: EnqueueOptions, tx: SqlClient): Accepted {
    for (const name of NOT_WITH_TX) {
      if (o[name] !== undefined) {
        throw new InvalidEnqueueOptionsError(
          `an enqueue in a transaction takes no ${name}: the transaction's own data decides`,
        );
      }
    }
    const hooks = afterCommit.get(tx);
    if (!hooks) {
      throw new InvalidEnqueueOptionsError(
        'enqueue({ tx }) needs a transaction opened by transaction(client, fn) from the offloader',
      );
    }
    const parsed = parseInput(job, input);
    if (registry.get(job.name) !== job) throw new Error(`job ${job.name} is not in the registry`);
    const { delayMs, expiresAt } = timing(o);
    const id = randomUUID();
    const state = delayMs ? ('delayed' as const) : ('waiting' as const);
    const accepted: Accepted = o.summary
      ? { id, name: job.name, state, summary: o.summary }
      : { id, name: job.name, state };
    return Object.assign(accepted, { parsed, delayMs, expiresAt, hooks });
  }

  const wrapped: Offloader = {
    ...offloader,
    mode: offloader.mode,
    async enqueue(job, input, o = {}) {
      const { tx } = o;
      if (!tx) return offloader.enqueue(job, input, o);
      const { parsed, delayMs, expiresAt, hooks, ...accepted } = record(
        job,
        input,
        o,
        tx,
      ) as Accepted & {
        parsed: unknown;
        delayMs: number;
        expiresAt?: number;
        hooks: (() => void)[];
      };
      if (offloader.mode === 'inline') {
        // The job runs after the commit, as it would once relayed; never if it rolls back.
        const rest = { ...o };
        delete rest.tx;
        hooks.push(() => {
          const entry: { name: string; ran?: string } = { name: job.name };
          ranAs.set(accepted.id, entry); // known from now: running
          if (ranAs.size > 1_000) ranAs.delete(ranAs.keys().next().value as string);
          offloader.enqueue(job, parsed as never, rest).then(
            (ran) => (entry.ran = ran.id),
            () => ranAs.delete(accepted.id),
          );
        });
        return accepted;
      }
      if (!outbox) {
        throw new InvalidEnqueueOptionsError(
          'enqueue({ tx }) needs an outbox (a database): none is configured',
        );
      }
      const data: JobData = { input: parsed };
      if (o.requestId) data.requestId = o.requestId;
      if (expiresAt) data.expiresAt = expiresAt;
      const row: OutboxRow = { id: accepted.id, name: job.name, data, opts: {} };
      if (delayMs) row.opts.runAt = Date.now() + delayMs;
      if (o.priority) row.opts.priority = o.priority;
      if (o.lifo) row.opts.lifo = o.lifo;
      await outbox.insert(tx, row);
      if (relayNow) {
        hooks.push(() => {
          row.committedAt = Date.now();
          relayNow([row]);
        });
      }
      return accepted;
    },
    enqueueMany(job, inputs, o = {}) {
      if ('tx' in o) throw new InvalidEnqueueOptionsError('enqueueMany takes no tx: use enqueue');
      return offloader.enqueueMany(job, inputs, o);
    },
    start(workflow, o = {}) {
      if ('tx' in o) throw new InvalidEnqueueOptionsError('start takes no tx: use enqueue');
      return offloader.start(workflow, o);
    },
    async status(id) {
      const inline = ranAs.get(id);
      if (inline) return inline.ran ? offloader.status(inline.ran) : running(id, inline.name);
      let found: JobStatus | null;
      try {
        found = await offloader.status(id);
      } catch (error) {
        // Redis is away: a job still in the outbox is waiting all the same.
        if (!(error instanceof QueueUnavailableError) || !outbox) throw error;
        const waiting = await pendingStatus(id);
        if (waiting) return waiting;
        throw error;
      }
      return found ?? pendingStatus(id);
    },
    async watch(id, listener) {
      let unsubscribe = await offloader.watch(id, listener);
      if (!outbox || !UUID.test(id) || !(await outbox.pending(id).catch(() => null))) {
        return unsubscribe;
      }
      // Still in the outbox: BullMQ has no events for it yet. Watch it once it is relayed.
      const watching = { stopped: false };
      const stopped = () => watching.stopped;
      void (async () => {
        while (!stopped() && (await outbox.pending(id).catch(() => true))) {
          await sleep(RELAYED_POLL_MS);
        }
        if (stopped()) return;
        unsubscribe();
        unsubscribe = await offloader.watch(id, listener);
        const status = await offloader.status(id);
        if (status && !stopped()) listener(status);
      })().catch(() => undefined); // the route's own status refresh is the safety net
      return () => {
        watching.stopped = true;
        unsubscribe();
      };
    },
  };

  function running(id: string, name: string): JobStatus {
    const now = new Date().toISOString();
    return { id, name, state: 'active', progress: 0, attempts: 1, createdAt: now };
  }

  async function pendingStatus(id: string): Promise<JobStatus | null> {
    if (!UUID.test(id)) return null; // not an outbox id (a workflow step's, say)
    const row = outbox && (await outbox.pending(id));
    if (!row) return null;
    return {
      id,
      name: row.name,
      state: 'waiting',
      progress: 0,
      attempts: 0,
      createdAt: row.createdAt.toISOString(),
    };
  }

  return wrapped;
}
