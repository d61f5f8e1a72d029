import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import request from 'supertest';
import { createTestApp, eventually, type TestApp } from '../harness/app.js';
import { startSmtp, type TestSmtp } from '../harness/smtp.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

// The same contract in both modes: what a client sees must not depend on where the job runs.
for (const mode of ['queue', 'inline'] as const) {
  describe(`POST /signup (${mode} mode)`, () => {
    let smtp: TestSmtp;
    let t: TestApp;

    before(async () => {
      smtp = await startSmtp();
      t = await createTestApp({ OFFLOAD_MODE: mode, SMTP_URL: smtp.url });
      if (mode === 'queue') t.startWorkers();
    });
    after(async () => {
      await t.close();
      await smtp.close();
    });

    it('when the body is valid, then it answers 202 with Location, and the job completes with the mail delivered', async () => {
      const email = `ann-${mode}@example.com`;
      const res = await request(t.app)
        .post('/signup')
        .send({ email, name: 'Ann Example' })
        .expect(202)
        .expect('Content-Type', /json/);
      const { id, name, statusUrl, eventsUrl } = res.body as Record<string, string>;
      assert.match(id ?? '', UUID);
      assert.equal(name, 'send-email');
      assert.equal(res.headers.location, `/jobs/${id}`);
      assert.equal(statusUrl, `/jobs/${id}`);
      assert.equal(eventsUrl, `/jobs/${id}/events`);
      assert.match(res.headers['server-timing'] ?? '', /^enqueue;dur=\d+(\.\d+)?$/);

      const status = await eventually(
        async () => {
          const res = await request(t.app).get(`/jobs/${id}`).expect(200);
          const body = res.body as Record<string, unknown>;
          return body.state === 'completed' ? body : undefined;
        },
        10_000,
        'state completed',
      );
      assert.equal(status.id, id);
      assert.equal(status.attempts, 1);
      assert.ok(
        !('input' in status) && !JSON.stringify(status).includes(email),
        'status never shows the input',
      );
      assert.ok(status.startedAt && status.finishedAt);

      const mail = await smtp.waitFor((m) => m.to.includes(email));
      assert.equal(mail.mail.subject, 'Welcome, Ann Example!');
      assert.match(mail.mail.text ?? '', /Thanks for signing up/);
      assert.match(mail.mail.html || '', /<h1>Welcome, Ann Example!<\/h1>/);
      assert.equal(
        mail.mail.messageId,
        `<${id}@offload.localhost>`,
        'Message-ID keyed by the job id',
      );
    });

    it('when the body is bad, then it answers 400 naming every problem and enqueues nothing', async () => {
      const before = mode === 'queue' ? await t.countJobs() : 0;
      const res = await request(t.app)
        .post('/signup')
        .send({ email: 'not-an-email', name: 'Eve\r\nBcc: victim@example.com', admin: true })
        .expect(400);
      const problems = (res.body as { problems: string[] }).problems.join('\n');
      assert.match(problems, /^email:/m);
      assert.match(problems, /^name: must not contain CR, LF or NUL/m);
      assert.match(problems, /Unrecognized key: "admin"/);
      if (mode === 'queue') assert.equal(await t.countJobs(), before);
    });

    it('when the JSON is malformed or too large, then it answers 4xx and enqueues nothing', async () => {
      const before = mode === 'queue' ? await t.countJobs() : 0;
      await request(t.app).post('/signup').type('json').send('{"email":').expect(400);
      await request(t.app)
        .post('/signup')
        .send({ email: 'a@example.com', name: 'x'.repeat(20_000) })
        .expect(413);
      if (mode === 'queue') assert.equal(await t.countJobs(), before);
    });

    it('when requests repeat an Idempotency-Key, even all at once, then they all get the one job and one mail', async () => {
      const email = `idem-${mode}@example.com`;
      const key = `signup-${randomUUID()}`;
      const before = mode === 'queue' ? await t.countJobs() : 0;
      const send = () =>
        request(t.app)
          .post('/signup')
          .set('Idempotency-Key', key)
          .send({ email, name: 'Ida' })
          .expect(202);
      const first = await send();
      const again = await Promise.all(Array.from({ length: 8 }, send));
      const ids = new Set([first, ...again].map((res) => (res.body as { id: string }).id));
      assert.equal(ids.size, 1, 'one job id for every request');
      assert.equal(first.headers['idempotent-replayed'], undefined);
      for (const res of again) assert.equal(res.headers['idempotent-replayed'], 'true');
      if (mode === 'queue') assert.equal(await t.countJobs(), before + 1);
      await smtp.waitFor((m) => m.to.includes(email));
      // A different key is a different request.
      const other = await request(t.app)
        .post('/signup')
        .set('Idempotency-Key', `${key}-2`)
        .send({ email, name: 'Ida' })
        .expect(202);
      assert.ok(!ids.has((other.body as { id: string }).id));
      await eventually(async () => {
        const res = await request(t.app).get(`/jobs/${(other.body as { id: string }).id}`);
        return (res.body as { state: string }).state === 'completed' ? true : undefined;
      });
      assert.equal(smtp.received.filter((m) => m.to.includes(email)).length, 2);
    });

    it('when an Idempotency-Key comes back with a different body, then it answers 422 naming the conflict, enqueues nothing, and one mail is sent', async () => {
      const key = `signup-${randomUUID()}`;
      const before = mode === 'queue' ? await t.countJobs() : 0;
      const post = (email: string) =>
        request(t.app).post('/signup').set('Idempotency-Key', key).send({ email, name: 'Con' });
      const first = await post(`conflict-1-${mode}@example.com`).expect(202);
      const other = await post(`conflict-2-${mode}@example.com`).expect(422);
      assert.match(
        (other.body as { error: string }).error,
        /already used with a different request/,
      );
      assert.equal(other.headers['idempotent-replayed'], undefined);
      // The first request again is still a replay of its job: the key stays bound to it.
      const again = await post(`conflict-1-${mode}@example.com`).expect(202);
      assert.equal((again.body as { id: string }).id, (first.body as { id: string }).id);
      if (mode === 'queue') assert.equal(await t.countJobs(), before + 1);
      await smtp.waitFor((m) => m.to.includes(`conflict-1-${mode}@example.com`));
      await eventually(async () => {
        const res = await request(t.app).get(`/jobs/${(first.body as { id: string }).id}`);
        return (res.body as { state: string }).state === 'completed' ? true : undefined;
      });
      assert.equal(smtp.received.filter((m) => m.to.includes(`conflict-2-${mode}`)).length, 0);
    });

    it('when 20 requests with one key and 20 different bodies arrive at once, then exactly one gets 202, the other 19 get 422, and one mail is sent', async () => {
      const key = `race-${randomUUID()}`;
      const before = mode === 'queue' ? await t.countJobs() : 0;
      const emails = Array.from({ length: 20 }, (_, i) => `race-${i}-${mode}@example.com`);
      const responses = await Promise.all(
        emails.map((email) =>
          request(t.app).post('/signup').set('Idempotency-Key', key).send({ email, name: 'R' }),
        ),
      );
      const statuses = responses.map((res) => res.status).sort();
      assert.deepEqual(statuses, [202, ...Array<number>(19).fill(422)], JSON.stringify(statuses));
      const winner = emails[responses.findIndex((res) => res.status === 202)]!;
      if (mode === 'queue') assert.equal(await t.countJobs(), before + 1);
      const id = (responses.find((res) => res.status === 202)!.body as { id: string }).id;
      await eventually(async () => {
        const res = await request(t.app).get(`/jobs/${id}`);
        return (res.body as { state: string }).state === 'completed' ? true : undefined;
      });
      const mailed = smtp.received.filter((m) => emails.some((e) => m.to.includes(e)));
      assert.equal(mailed.length, 1);
      assert.ok(mailed[0]!.to.includes(winner), 'the mail went to the winner’s address');
    });

    it('when an Idempotency-Key is too short or not visible ASCII, then it answers 400 and enqueues nothing', async () => {
      const before = mode === 'queue' ? await t.countJobs() : 0;
      for (const key of ['short', `${'k'.repeat(20)} space`, 'x'.repeat(256)]) {
        const res = await request(t.app)
          .post('/signup')
          .set('Idempotency-Key', key)
          .send({ email: 'key@example.com', name: 'Kay' })
          .expect(400);
        assert.match((res.body as { error: string }).error, /Idempotency-Key must be 16 to 255/);
      }
      if (mode === 'queue') assert.equal(await t.countJobs(), before);
    });

    it('when ?mode=sync, then the mail is sent inside the request and it answers 201', async () => {
      const email = `sync-${mode}@example.com`;
      const res = await request(t.app)
        .post('/signup?mode=sync')
        .send({ email, name: 'Sam' })
        .expect(201);
      assert.match(res.headers['server-timing'] ?? '', /^send;dur=/);
      assert.equal((res.body as { sent: { via: string } }).sent.via, 'smtp');
      // Already delivered when the response came: no waiting needed.
      assert.ok(smtp.received.some((m) => m.to.includes(email)));
    });
  });
}
