// Issue 22: with a database, the signup writes the user row and its welcome mail's job in one
// transaction (the job in the outbox, relayed to BullMQ after the commit). Real Postgres.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import request from 'supertest';
import { withTransaction } from '../../src/db/pool.js';
import { sendEmail } from '../../jobs/index.js';
import { createTestApp, eventually, type TestApp } from '../harness/app.js';
import { createDatabase } from '../harness/postgres.js';
import { startSmtp, type TestSmtp } from '../harness/smtp.js';

interface Body {
  id: string;
  name: string;
  state: string;
  statusUrl: string;
  user: { id: string; email: string };
}

const outboxRows = async (t: TestApp) =>
  (await t.deps.db!.query<{ n: number }>('SELECT count(*)::int AS n FROM offload_outbox')).rows[0]!
    .n;
const users = async (t: TestApp, email: string) =>
  (
    await t.deps.db!.query<{ id: string; name: string }>(
      'SELECT id, name FROM users WHERE lower(email) = lower($1)',
      [email],
    )
  ).rows;

async function completed(t: TestApp, id: string) {
  return eventually(
    async () => {
      const body = (await request(t.app).get(`/jobs/${id}`).expect(200)).body as Record<
        string,
        unknown
      >;
      return body.state === 'completed' ? body : undefined;
    },
    15_000,
    `job ${id} completed`,
  );
}

for (const mode of ['queue', 'inline'] as const) {
  describe(`POST /signup with a database (${mode} mode)`, () => {
    let smtp: TestSmtp;
    let t: TestApp;

    before(async () => {
      smtp = await startSmtp();
      const DATABASE_URL = await createDatabase();
      t = await createTestApp({ OFFLOAD_MODE: mode, SMTP_URL: smtp.url, DATABASE_URL });
      if (mode === 'queue') t.startWorkers();
    });
    after(async () => {
      await t.close();
      await smtp.close();
    });

    it('when the body is valid, then the user row is stored, it answers 202 with the user and a status URL that works at once, and the welcome mail goes to the stored user', async () => {
      const email = `Ann.${mode}@Example.com`;
      const res = await request(t.app)
        .post('/signup')
        .send({ email, name: 'Ann Example' })
        .expect(202);
      const body = res.body as Body;
      assert.equal(body.name, 'send-email');
      assert.equal(res.headers.location, `/jobs/${body.id}`);
      const [row] = await users(t, email);
      assert.ok(row, 'the user row is committed');
      assert.deepEqual(body.user, { id: row.id, email });
      // At once: from the outbox or from BullMQ, never a 404.
      const first = (await request(t.app).get(`/jobs/${body.id}`).expect(200)).body as Body;
      assert.equal(first.name, 'send-email');

      const status = await completed(t, body.id);
      assert.ok(!JSON.stringify(status).includes(email.toLowerCase()), 'no input in the status');
      const mail = await smtp.waitFor((m) =>
        m.to.some((to) => to.toLowerCase() === email.toLowerCase()),
      );
      assert.equal(mail.mail.subject, 'Welcome, Ann Example!');
      // Keyed by the job's id (inline, by the id of the run after the commit).
      if (mode === 'queue') assert.equal(mail.mail.messageId, `<${body.id}@offload.localhost>`);
    });

    it('when the email is already registered (in any case), then it answers 409 naming it, and nothing is stored or enqueued', async () => {
      const email = `bob-${mode}@example.com`;
      const first = (await request(t.app).post('/signup').send({ email, name: 'Bob' }).expect(202))
        .body as Body;
      await completed(t, first.id);
      const jobsBefore = mode === 'queue' ? await t.countJobs() : 0;
      const rowsBefore = await outboxRows(t);
      const res = await request(t.app)
        .post('/signup')
        .send({ email: email.toUpperCase(), name: 'Bob Again' })
        .expect(409);
      assert.match((res.body as { error: string }).error, new RegExp(email.toUpperCase()));
      assert.equal((await users(t, email)).length, 1);
      assert.equal(await outboxRows(t), rowsBefore);
      if (mode === 'queue') assert.equal(await t.countJobs(), jobsBefore);
      assert.equal(smtp.received.filter((m) => m.to.includes(email)).length, 1);
    });

    it('when a signup is retried with its Idempotency-Key, then it answers the first user and job (Idempotent-Replayed), and the key with another body is 422', async () => {
      const key = randomUUID();
      const email = `carol-${mode}@example.com`;
      const post = (name: string) =>
        request(t.app).post('/signup').set('Idempotency-Key', key).send({ email, name });
      const first = await post('Carol').expect(202);
      const again = await post('Carol').expect(202);
      assert.equal(again.headers['idempotent-replayed'], 'true');
      assert.equal((again.body as Body).id, (first.body as Body).id);
      assert.deepEqual((again.body as Body).user, (first.body as Body).user);
      await post('Someone Else').expect(422);
      assert.equal((await users(t, email)).length, 1);
      await completed(t, (first.body as Body).id);
    });

    it('when the transaction fails after the insert, then neither the user nor the job exists', async () => {
      let id = '';
      await assert.rejects(
        withTransaction(t.deps.db!, async (tx) => {
          const userId = randomUUID();
          await tx.query('INSERT INTO users (id, email, name) VALUES ($1, $2, $3)', [
            userId,
            `dave-${mode}@example.com`,
            'Dave',
          ]);
          id = (await t.offloader.enqueue(sendEmail, { template: 'welcome-user', userId }, { tx }))
            .id;
          throw new Error('something after the insert failed');
        }),
        /something after the insert failed/,
      );
      assert.ok(id);
      assert.equal((await users(t, `dave-${mode}@example.com`)).length, 0);
      await new Promise((resolve) => setTimeout(resolve, 300)); // a relay would have run by now
      assert.equal(await t.offloader.status(id), null);
      await request(t.app).get(`/jobs/${id}`).expect(404);
    });
  });
}

describe('POST /signup with a database: the worker re-reads the user', () => {
  let smtp: TestSmtp;
  let t: TestApp;

  before(async () => {
    smtp = await startSmtp();
    const DATABASE_URL = await createDatabase();
    t = await createTestApp({ SMTP_URL: smtp.url, DATABASE_URL });
  });
  after(async () => {
    await t.close();
    await smtp.close();
  });

  it('when the user is deleted before the job runs, then the job completes as skipped, sends nothing and is not retried', async () => {
    const email = 'erin@example.com';
    const body = (await request(t.app).post('/signup').send({ email, name: 'Erin' }).expect(202))
      .body as Body;
    const waiting = (await request(t.app).get(`/jobs/${body.id}`).expect(200)).body as Body;
    assert.equal(waiting.state, 'waiting');
    await t.deps.db!.query('DELETE FROM users WHERE id = $1', [body.user.id]);
    t.startWorkers();
    const status = await completed(t, body.id);
    assert.deepEqual(status.result, { skipped: 'user deleted' });
    assert.equal(status.attempts, 1);
    assert.equal(smtp.received.filter((m) => m.to.includes(email)).length, 0);
  });
});

describe('the outbox in /readyz and /metrics', () => {
  let t: TestApp;

  before(async () => {
    const DATABASE_URL = await createDatabase();
    // No fast path and no worker: committed rows stay in the outbox.
    t = await createTestApp({ DATABASE_URL, OUTBOX_FAST_PATH: 'false' });
  });
  after(() => t.close());

  it('when committed jobs wait to be relayed, then /readyz and /metrics show how many and how old, and the status reads waiting from the outbox', async () => {
    const body = (
      await request(t.app)
        .post('/signup')
        .send({ email: 'fay@example.com', name: 'Fay' })
        .expect(202)
    ).body as Body;
    assert.equal(await t.countJobs(), 0, 'not in BullMQ');
    const status = (await request(t.app).get(`/jobs/${body.id}`).expect(200)).body as Body;
    assert.equal(status.state, 'waiting');
    const ready = (await request(t.app).get('/readyz')).body as {
      outbox: { depth: number; oldestAgeSeconds: number };
    };
    assert.equal(ready.outbox.depth, 1);
    assert.ok(ready.outbox.oldestAgeSeconds >= 0);
    const metrics = (await request(t.app).get('/metrics').expect(200)).text;
    assert.match(metrics, /^offload_outbox_depth 1$/m);
    assert.match(metrics, /^offload_outbox_oldest_age_seconds [\d.e-]+$/m);
  });
});

describe('the event stream of a job still in the outbox', () => {
  let t: TestApp;

  before(async () => {
    const DATABASE_URL = await createDatabase();
    t = await createTestApp({ DATABASE_URL, OUTBOX_FAST_PATH: 'false' });
  });
  after(() => t.close());

  it('when a job is watched before it is relayed, then its events follow it once it is, to its final state', async () => {
    const body = (
      await request(t.app)
        .post('/signup')
        .send({ email: 'gil@example.com', name: 'Gil' })
        .expect(202)
    ).body as Body;
    const stream = request(t.app).get(`/jobs/${body.id}/events`).buffer(true);
    setTimeout(() => t.startWorkers(), 200); // the relay loop, then the worker
    const res = await stream.expect(200);
    assert.match(res.text, /^event: status\ndata: .*"state":"waiting"/m);
    assert.match(res.text, /^event: completed\n/m);
  });
});
