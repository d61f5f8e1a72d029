// The outbox's core (src/offload/outbox.ts, relay.ts) on a real Postgres and Redis: a row is
// relayed once however often it is relayed, in order, then marked and later deleted.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { sendEmail } from '../../jobs/index.js';
import { registry } from '../../src/process/boot.js';
import { withTransaction } from '../../src/db/pool.js';
import { createOutbox, startRelay, type Relay } from '../../src/offload/index.js';
import { createTestApp, type TestApp } from '../harness/app.js';
import { createDatabase } from '../harness/postgres.js';

const silent = { debug: () => undefined, info: () => undefined, warn: () => undefined };

describe('offloader: the outbox and its relay', () => {
  let t: TestApp;
  let redis: Redis;
  let relay: Relay;
  let mail: Queue;

  before(async () => {
    const DATABASE_URL = await createDatabase();
    t = await createTestApp({ DATABASE_URL, OUTBOX_FAST_PATH: 'false' });
    redis = new Redis(t.config.REDIS_URL, { maxRetriesPerRequest: 1 });
    await redis.ping();
    const db = t.deps.db!;
    relay = startRelay({
      outbox: createOutbox({ db }),
      connect: () => db.connect(),
      registry,
      connection: redis,
      prefix: t.config.QUEUE_PREFIX,
      log: silent,
      graceMs: 0,
      keepMs: 0,
    });
    mail = new Queue('mail', { connection: redis, prefix: t.config.QUEUE_PREFIX });
  });
  after(async () => {
    await relay.close();
    await mail.close();
    redis.disconnect();
    await t.close();
  });

  const enqueueUsers = (n: number) =>
    withTransaction(t.deps.db!, async (tx) => {
      const ids: string[] = [];
      for (let i = 0; i < n; i++) {
        const userId = randomUUID();
        await tx.query('INSERT INTO users (id, email, name) VALUES ($1, $2, $3)', [
          userId,
          `${userId}@example.com`,
          'U',
        ]);
        ids.push(
          (await t.offloader.enqueue(sendEmail, { template: 'welcome-user', userId }, { tx })).id,
        );
      }
      return ids;
    });

  it('when rows are relayed twice (the fast path and a loop, or two loops), then BullMQ holds one job per row, with the row id as job id, added in commit order', async () => {
    const ids = await enqueueUsers(5);
    for (const id of ids) assert.equal((await t.offloader.status(id))?.state, 'waiting');
    assert.equal(await relay.relayLeftBehind(), 5);
    assert.equal(await relay.relayLeftBehind(), 0, 'marked: not taken again');
    // Relayed again regardless (the fast path racing a loop): still one job each.
    const rows = (
      await t.deps.db!.query<{ id: string; name: string; data: never; opts: never }>(
        'SELECT id, name, data, opts FROM offload_outbox WHERE id = ANY($1::uuid[])',
        [ids],
      )
    ).rows;
    relay.relayNow(rows);
    await new Promise((resolve) => setTimeout(resolve, 200));
    const jobs = await mail.getJobs(['waiting'], 0, -1, true); // oldest first
    assert.deepEqual(
      jobs
        .map((job) => job.id)
        .filter((id) => ids.includes(id!))
        .sort(),
      [...ids].sort(),
    );
    assert.equal(jobs.length, 5);
    const added = jobs.map((job) => job.id);
    assert.deepEqual(added, ids, 'in order');
  });

  it('when relayed rows are older than keepMs, then the outbox deletes them', async () => {
    const outbox = createOutbox({ db: t.deps.db! });
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.ok((await outbox.sweep(0)) >= 5);
    assert.deepEqual(await outbox.depth(), { depth: 0, oldestAgeSeconds: 0 });
  });

  it('when a transaction rolls back, then its row never reaches the outbox', async () => {
    await assert.rejects(
      withTransaction(t.deps.db!, async (tx) => {
        await t.offloader.enqueue(
          sendEmail,
          { template: 'welcome-user', userId: randomUUID() },
          { tx },
        );
        throw new Error('rolled back');
      }),
    );
    assert.equal((await createOutbox({ db: t.deps.db! }).depth()).depth, 0);
  });

  it('when enqueue gets a tx not opened by transaction(), or a key with a tx, then it refuses', async () => {
    const client = await t.deps.db!.connect();
    try {
      await assert.rejects(
        t.offloader.enqueue(
          sendEmail,
          { template: 'welcome-user', userId: randomUUID() },
          { tx: client },
        ),
        /needs a transaction opened by transaction/,
      );
    } finally {
      client.release();
    }
    await assert.rejects(
      withTransaction(t.deps.db!, (tx) =>
        t.offloader.enqueue(
          sendEmail,
          { template: 'welcome-user', userId: randomUUID() },
          { tx, key: 'k'.repeat(20) },
        ),
      ),
      /takes no key/,
    );
  });
});
