// The connection budget the README documents (Beyond one machine → Redis connections), pinned:
// a change in how many connections a process opens fails here, so the README and a plan's
// `maxclients` sizing are revisited on purpose.
import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { Redis } from 'ioredis';
import { freePort } from '../harness/ports.js';
import { startProcess, type Proc } from '../harness/procfile.js';
import { startRedis, type PrivateRedis } from '../harness/redis.js';

const PREFIX = 'budget';

/**
 * The other clients of `admin`'s Redis, counted by what they are: src/redis/connections.ts names our
 * connections `offload:<role>`; BullMQ renames the ones it blocks on `<prefix>:<base64 queue>`
 * (a worker's fetch) and `<prefix>:<base64 queue>:qe` (a QueueEvents reader).
 */
async function clients(admin: Redis): Promise<Record<string, number>> {
  const self = String(await admin.client('ID'));
  const counts: Record<string, number> = {};
  for (const line of String(await admin.client('LIST'))
    .split('\n')
    .filter(Boolean)) {
    const field = (key: string) => new RegExp(`(?:^| )${key}=(\\S*)`).exec(line)?.[1] ?? '';
    if (field('id') === self) continue;
    const name = field('name');
    const bullmq = new RegExp(`^${PREFIX}:([A-Za-z0-9+/=]+)(:qe)?$`).exec(name);
    const label = bullmq
      ? `${bullmq[2] ? 'events' : 'fetch'} ${Buffer.from(bullmq[1]!, 'base64').toString()}`
      : field('cmd') === 'subscribe'
        ? `${name} (subscriber)`
        : name || '(unnamed)';
    counts[label] = (counts[label] ?? 0) + 1;
  }
  return counts;
}

/** Polls until the clients are `expected`, or for 10 s; then compares (the diff names the change). */
async function expectClients(admin: Redis, expected: Record<string, number>) {
  const deadline = Date.now() + 10_000;
  let seen = await clients(admin);
  while (!isDeepStrictEqual(seen, expected) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    seen = await clients(admin);
  }
  assert.deepEqual(seen, expected);
}
describe('Redis connection budget (CLIENT LIST on a private Redis)', function () {
  this.timeout(60_000);
  let redis: PrivateRedis | undefined;
  let admin: Redis | undefined;
  const procs: Proc[] = [];
  let env: Record<string, string>;
  let base: string;

  before(async () => {
    redis = await startRedis();
    admin = new Redis(redis.url);
    const dir = await mkdtemp(join(tmpdir(), 'offload-budget-'));
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    env = {
      REDIS_URL: redis.url,
      QUEUE_PREFIX: PREFIX,
      PORT: String(port),
      OUTBOX_DIR: join(dir, 'outbox'),
      STORAGE_DIR: join(dir, 'storage'),
    };
  });
  after(async () => {
    await Promise.all(procs.map((p) => p.stop('SIGKILL')));
    admin?.disconnect();
    await redis?.destroy();
  });

  const start = (type: string, extra: Record<string, string> = {}) => {
    const proc = startProcess(type, { ...env, ...extra });
    procs.push(proc);
    return proc;
  };
  const post = async (path: string, body: unknown) => {
    const res = await fetch(`${base}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    assert.equal(res.status, 202);
    return ((await res.json()) as { id: string }).id;
  };

  it('when web starts, then it holds 2 (producer, metrics event reader), and 2 more per queue someone watches', async () => {
    assert.ok(admin);
    const web = start('web');
    await web.waitForLog((l) => l.msg === 'web listening');
    await expectClients(admin, { 'offload:producer': 1, 'offload:worker': 1 });

    // Live status (GET /jobs/:id/events) reads the queue's event stream: opened on the first
    // watcher of a queue, shared by every later one, kept until exit.
    const mailJob = await post('/signup', { email: 'budget@example.com', name: 'Bud Get' });
    const hookJob = await post('/webhooks', {
      url: 'https://example.com/hook',
      event: 'budget.test',
      payload: {},
    });
    const watching = [mailJob, mailJob, hookJob].map((id) => fetch(`${base}/jobs/${id}/events`));
    const streams = await Promise.all(watching);
    await expectClients(admin, {
      'offload:producer': 1,
      'offload:worker': 3,
      'events mail': 1,
      'events webhooks': 1,
    });
    for (const res of streams) await res.body?.cancel();
    assert.equal(await web.stop(), 0);
    await expectClients(admin, {});
  });

  it('when a worker consumes every queue, then it holds 2 (shared, cancel subscriber) and 1 blocking fetch per queue', async () => {
    assert.ok(admin);
    const worker = start('worker');
    await worker.waitForLog((l) => l.msg === 'consuming queues');
    // The shared connection also carries the heartbeat, schedules and jobs' follow-up enqueues.
    await expectClients(admin, {
      'offload:worker': 1,
      'offload:worker (subscriber)': 1,
      'fetch mail': 1,
      'fetch media': 1,
      'fetch reports': 1,
      'fetch webhooks': 1,
    });
    assert.equal(await worker.stop(), 0);
    await expectClients(admin, {});
  });

  it('when a worker consumes one queue (WORKER_QUEUES=mail), then it holds 3', async () => {
    assert.ok(admin);
    const worker = start('worker', { WORKER_QUEUES: 'mail' });
    await worker.waitForLog((l) => l.msg === 'consuming queues');
    await expectClients(admin, {
      'offload:worker': 1,
      'offload:worker (subscriber)': 1,
      'fetch mail': 1,
    });
  });
});
