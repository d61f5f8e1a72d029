// Issue 22's guarantees, with the Procfile's real processes, a real Postgres and a real Redis:
// a signup's commit always gets its welcome mail, once, whatever dies or goes away after it.
import assert from 'node:assert/strict';
import pg from 'pg';
import { eventually } from '../harness/app.js';
import { sharedRedisUrl } from '../harness/global.js';
import { createDatabase } from '../harness/postgres.js';
import { startRedis, type PrivateRedis } from '../harness/redis.js';
import { startStack, type Stack } from '../harness/stack.js';

/** Waits until each address got exactly one mail; fails on a duplicate. */
async function onceEach(stack: Stack, emails: readonly string[], timeoutMs: number) {
  await eventually(
    () => {
      const got = new Map<string, number>();
      for (const m of stack.smtp.received)
        for (const to of m.to) got.set(to, (got.get(to) ?? 0) + 1);
      const twice = emails.filter((e) => (got.get(e) ?? 0) > 1);
      assert.deepEqual(twice, [], 'a mail was sent twice');
      return emails.every((e) => got.get(e) === 1) ? true : undefined;
    },
    timeoutMs,
    `${emails.length} mails, one each`,
  );
  // Nothing else arrives late (a duplicate from a second relay would have arrived by now).
  await new Promise((resolve) => setTimeout(resolve, 1_500));
  const all = stack.smtp.received.flatMap((m) => m.to).filter((to) => emails.includes(to));
  assert.equal(all.length, emails.length, 'no duplicate mail');
}

const usersIn = async (url: string) => {
  const client = new pg.Client(url);
  await client.connect();
  try {
    return (await client.query<{ email: string }>('SELECT email FROM users')).rows.map(
      (r) => r.email,
    );
  } finally {
    await client.end();
  }
};

describe('reliability: the outbox (real processes, Postgres, Redis)', function () {
  this.timeout(120_000);
  const stacks: Stack[] = [];
  const redises: PrivateRedis[] = [];
  after(async () => {
    await Promise.all(stacks.map((s) => s.close()));
    await Promise.all(redises.map((r) => r.destroy()));
  });

  it('when the web process is killed (-9) after its commits and before relaying them, then each mail is still sent, once, by the worker', async () => {
    const DATABASE_URL = await createDatabase();
    // No fast path: every commit waits for the relay, as when a process dies between the two.
    const stack = await startStack(sharedRedisUrl(), { DATABASE_URL });
    stacks.push(stack);
    const web = await stack.startWeb({ OUTBOX_FAST_PATH: 'false' });
    const emails = Array.from({ length: 20 }, (_, i) => `killed${i}@example.com`);
    for (const email of emails) assert.equal((await stack.signup(email)).status, 202);
    web.child.kill('SIGKILL');
    await web.exited;
    assert.equal((await stack.counts(['mail'])).waiting ?? 0, 0, 'nothing relayed yet');
    assert.deepEqual((await usersIn(DATABASE_URL)).sort(), [...emails].sort());

    const worker = await stack.startWorker();
    await onceEach(stack, emails, 30_000);
    assert.ok(worker.lines.some((l) => l.msg === 'outbox rows relayed by the loop'));
  });

  it('when the web process is killed (-9) in the middle of a burst of signups, then every committed user gets one mail', async () => {
    const DATABASE_URL = await createDatabase();
    const stack = await startStack(sharedRedisUrl(), { DATABASE_URL });
    stacks.push(stack);
    const web = await stack.startWeb();
    await stack.startWorker();
    const answers = Array.from({ length: 100 }, (_, i) =>
      stack.signup(`burst${i}@example.com`).catch(() => ({ status: 0 })),
    );
    await eventually(async () => ((await usersIn(DATABASE_URL)).length >= 20 ? true : undefined));
    web.child.kill('SIGKILL');
    const statuses = (await Promise.all(answers)).map((a) => a.status);
    const committed = await usersIn(DATABASE_URL);
    // Every 202 was committed; some requests were cut off (no answer), some committed unanswered.
    const accepted = statuses.filter((s) => s === 202).length;
    assert.ok(committed.length >= accepted, `${committed.length} users, ${accepted} accepted`);
    await onceEach(stack, committed, 30_000);
  });

  it('when Redis is down during signups, then they still answer 202 (waiting), and every mail is sent once after Redis returns, without restarting anything', async () => {
    const redis = await startRedis();
    redises.push(redis);
    const DATABASE_URL = await createDatabase();
    const stack = await startStack(redis.url, { DATABASE_URL, OUTBOX_RELAY_INTERVAL_MS: '200' });
    stacks.push(stack);
    await stack.startWeb();
    await stack.startWorker();
    await redis.stop();

    const emails = Array.from({ length: 20 }, (_, i) => `outage${i}@example.com`);
    const ids: string[] = [];
    for (const email of emails) {
      const { status, id, ms } = await stack.signup(email);
      assert.equal(status, 202, `${email} answered ${status}`);
      assert.ok(ms < 2_000, `a signup took ${ms.toFixed(0)} ms`);
      ids.push(id!);
    }
    // The status URL works while Redis is away: the job waits in the outbox.
    assert.equal((await stack.status(ids[0]!)).state, 'waiting');

    await redis.start();
    await onceEach(stack, emails, 60_000);
    await stack.allCompleted(ids, 30_000);
  });

  it('when 200 signups arrive at once with the relay loop running in two workers, then 200 mails are sent and none twice', async () => {
    const DATABASE_URL = await createDatabase();
    const stack = await startStack(sharedRedisUrl(), {
      DATABASE_URL,
      OUTBOX_RELAY_INTERVAL_MS: '50',
      WORKER_CONCURRENCY: '20',
    });
    stacks.push(stack);
    // No fast path: the two loops race each other for every row.
    await stack.startWeb({ OUTBOX_FAST_PATH: 'false' });
    const [a, b] = [await stack.startWorker(), await stack.startWorker()];
    const emails = Array.from({ length: 200 }, (_, i) => `crowd${i}@example.com`);
    const answers = await Promise.all(emails.map((email) => stack.signup(email)));
    assert.deepEqual(
      answers.filter((r) => r.status !== 202).map((r) => r.status),
      [],
    );
    await onceEach(stack, emails, 60_000);
    const relayed = (lines: typeof a.lines) =>
      lines
        .filter((l) => l.msg === 'outbox rows relayed by the loop')
        .reduce((sum, l) => sum + Number(l.rows), 0);
    assert.equal(relayed(a.lines) + relayed(b.lines), 200, 'each row relayed once');
  });
});
