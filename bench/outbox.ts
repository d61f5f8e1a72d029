// The outbox suite (issue 22): POST /signup with the outbox (user row + outbox row in one
// Postgres transaction, relayed to BullMQ after the commit) against today's route (one BullMQ
// add, no database), side by side in one run, and the relay's lag from commit to job in BullMQ
// on the fast path. A private redis-server and a private Postgres (test/harness/postgres.ts),
// the servers in a child process (bench/outbox-servers.ts), autocannon here.
// `npm run bench -- --suite outbox`.
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import autocannon from 'autocannon';
import pg from 'pg';
import { migrate } from '../src/db/migrate.js';
import { startPostgres } from '../test/harness/postgres.js';
import { startRedis } from '../test/harness/redis.js';
import {
  fixed,
  header,
  loader,
  median,
  MIN_ROUNDS_TO_WRITE,
  onCleanup,
  script,
  start,
  version,
  writeSection,
} from './common.js';
import type { OutboxServersReady, OutboxVariant } from './outbox-servers.js';

const TARGETS = { ratio: 0.7, p99LagMs: 50 };

export interface OutboxOptions {
  rounds: number;
  duration: number;
  warmup: number;
  connections: number;
}

interface Row {
  round: number;
  variant: OutboxVariant;
  rps: number;
  p99: number;
  errors: number;
}

const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
};

let counter = 0;
async function load(port: number, duration: number, connections: number) {
  return autocannon({
    url: `http://127.0.0.1:${port}/signup`,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    connections,
    pipelining: 1,
    duration,
    // A new address each request: a repeated one is a 409, not a signup.
    requests: [
      {
        setupRequest: (request) => ({
          ...request,
          body: JSON.stringify({ email: `u${process.pid}-${counter++}@example.com`, name: 'Ada' }),
        }),
      },
    ],
  });
}

export async function runOutbox(options: OutboxOptions): Promise<boolean> {
  const started = start();
  const redis = await startRedis();
  onCleanup(() => redis.destroy());
  const postgres = await startPostgres();
  onCleanup(() => postgres.stop());
  const admin = new pg.Client(postgres.url());
  await admin.connect();
  await admin.query('CREATE DATABASE bench');
  await admin.end();
  const databaseUrl = postgres.url('bench');
  await migrate(databaseUrl);
  const dir = await mkdtemp(join(os.tmpdir(), 'offload-bench-outbox-'));
  onCleanup(() => rm(dir, { recursive: true, force: true }));

  const child: ChildProcess = fork(script('bench/outbox-servers.ts'), [], {
    execArgv: [...loader],
    env: {
      ...process.env,
      BENCH_REDIS_URL: redis.url,
      BENCH_DATABASE_URL: databaseUrl,
      BENCH_DIR: dir,
    },
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  onCleanup(async () => {
    if (child.connected) child.disconnect();
    if (child.exitCode === null) await once(child, 'exit');
  });
  const [ready] = (await once(child, 'message')) as [OutboxServersReady];
  const lags = async () => {
    child.send('lags');
    const [reply] = (await once(child, 'message')) as [{ lags: number[] }];
    return reply.lags;
  };

  const variants: OutboxVariant[] = ['today', 'outbox'];
  for (const variant of variants) await load(ready.ports[variant], options.warmup, 20);
  await lags(); // the warm-up's
  const rows: Row[] = [];
  const allLags: number[] = [];
  for (let round = 1; round <= options.rounds; round++) {
    const order = round % 2 ? variants : [...variants].reverse();
    for (const variant of order) {
      const result = await load(ready.ports[variant], options.duration, options.connections);
      await sleep(300); // the relay's last batch lands
      if (variant === 'outbox') allLags.push(...(await lags()));
      const row = {
        round,
        variant,
        rps: result.requests.average,
        p99: result.latency.p99,
        errors: result.errors + result.non2xx,
      };
      rows.push(row);
      console.log(
        `round ${round} ${variant.padEnd(7)} ${fixed(row.rps, 0)} req/s p99 ${row.p99} ms, ${row.errors} errors`,
      );
    }
  }

  const medianOf = (variant: OutboxVariant, value: (row: Row) => number) =>
    median(rows.filter((r) => r.variant === variant).map(value));
  const ratios = [...new Set(rows.map((r) => r.round))].map((round) => {
    const of = (v: OutboxVariant) => rows.find((r) => r.round === round && r.variant === v)!.rps;
    return of('outbox') / of('today');
  });
  const ratio = median(ratios);
  const p50 = percentile(allLags, 50);
  const p99 = percentile(allLags, 99);
  const errors = rows.reduce((sum, r) => sum + r.errors, 0);
  const ratioPass = ratio >= TARGETS.ratio;
  const lagPass = p99 <= TARGETS.p99LagMs;
  const lines = [
    '## Outbox: the signup with a database (issue 22)',
    '',
    ...header(
      started,
      `pg ${version('pg')}, bullmq ${version('bullmq')}, Postgres ${postgres.port ? 'private' : ''}`,
    ),
    `- ${options.rounds} rounds of ${options.duration} s per variant, ${options.connections} connections, a new address per request; Postgres with fsync off (a test server: the ratio is the route's work, not the disk's)`,
    '',
    '| variant | req/s (median) | p99 ms (median) |',
    '|---|---:|---:|',
    ...variants.map(
      (v) =>
        `| ${v} | ${fixed(
          medianOf(v, (r) => r.rps),
          0,
        )} | ${fixed(
          medianOf(v, (r) => r.p99),
          0,
        )} |`,
    ),
    '',
    `- outbox / today: **${fixed(ratio)}×** (median of per-round ratios ${ratios.map((r) => fixed(r)).join(', ')}; target ≥ ${TARGETS.ratio}) ${ratioPass ? 'PASS' : 'FAIL'}`,
    `- relay lag, commit to job in BullMQ, fast path: p50 **${fixed(p50, 1)} ms**, p99 **${fixed(p99, 1)} ms** over ${allLags.length} jobs (target p99 ≤ ${TARGETS.p99LagMs} ms) ${lagPass ? 'PASS' : 'FAIL'}`,
    `- errors and non-2xx: ${errors}`,
  ];
  console.log(`\n${lines.join('\n')}`);
  if (options.rounds >= MIN_ROUNDS_TO_WRITE) writeSection('outbox', lines.join('\n'));
  return ratioPass && lagPass && errors === 0;
}
