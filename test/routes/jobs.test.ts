import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { get, type Server } from 'node:http';
import request from 'supertest';
import { createTestApp, eventually, type TestApp } from '../harness/app.js';
import { startSmtp, type TestSmtp } from '../harness/smtp.js';

interface SseEvent {
  event: string;
  data: Record<string, unknown>;
}

/** Reads a whole server-sent-event stream until the server ends it. */
async function readEvents(url: string): Promise<{ contentType: string; events: SseEvent[] }> {
  const res = get(url);
  const [response] = (await once(res, 'response')) as [import('node:http').IncomingMessage];
  let body = '';
  response.setEncoding('utf8');
  for await (const chunk of response) body += chunk as string;
  const events = body
    .split('\n\n')
    .filter((block) => block.startsWith('event:'))
    .map((block) => {
      const [eventLine = '', dataLine = ''] = block.split('\n');
      return {
        event: eventLine.slice('event: '.length),
        data: JSON.parse(dataLine.slice('data: '.length)) as Record<string, unknown>,
      };
    });
  return { contentType: String(response.headers['content-type']), events };
}

describe('GET /jobs/:id and /jobs/:id/events', () => {
  let smtp: TestSmtp;
  let t: TestApp;
  let server: Server;
  let base: string;

  before(async () => {
    smtp = await startSmtp();
    t = await createTestApp({ SMTP_URL: smtp.url });
    t.startWorkers();
    server = t.app.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const address = server.address();
    base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await t.close();
    await smtp.close();
  });

  it('when the id is unknown or malformed, then both routes answer a JSON 404', async () => {
    for (const id of [randomUUID(), '1', 'not-a-uuid', '..%2F..%2Fetc']) {
      const res = await request(t.app)
        .get(`/jobs/${id}`)
        .expect(404)
        .expect('Content-Type', /json/);
      assert.match((res.body as { error: string }).error, /^no job/);
      await request(t.app).get(`/jobs/${id}/events`).expect(404);
    }
  });

  it('when a route does not exist, then it answers a JSON 404 naming it', async () => {
    const res = await request(t.app).get('/nope').expect(404).expect('Content-Type', /json/);
    assert.equal((res.body as { error: string }).error, 'no route for GET /nope');
  });

  it('when a job is watched, then the stream shows its progress and final state, then ends', async () => {
    smtp.delayMs = 400; // keeps the job active long enough to watch it work
    try {
      const accepted = await request(t.app)
        .post('/signup')
        .send({ email: 'watch@example.com', name: 'Wanda' })
        .expect(202);
      const { contentType, events } = await readEvents(
        `${base}${String(accepted.headers.location)}/events`,
      );
      assert.match(contentType, /^text\/event-stream/);
      const last = events.at(-1);
      assert.equal(last?.event, 'completed');
      assert.equal(last.data.state, 'completed');
      assert.ok(
        events.some(
          (e) => e.event === 'status' && e.data.state === 'active' && e.data.progress === 10,
        ),
        `progress 10 while active was streamed: ${JSON.stringify(events.map((e) => [e.event, e.data.state, e.data.progress]))}`,
      );
    } finally {
      smtp.delayMs = 0;
    }
  });

  it('when the job is already finished, then the stream sends the final state at once and ends', async () => {
    const accepted = await request(t.app)
      .post('/signup')
      .send({ email: 'done@example.com', name: 'Dan' })
      .expect(202);
    await smtp.waitFor((m) => m.to.includes('done@example.com'));
    const { events } = await readEvents(`${base}${String(accepted.headers.location)}/events`);
    // The mail was delivered just before the job was marked completed; allow that last step.
    assert.ok(events.length >= 1 && events.length <= 2, `one or two events: ${events.length}`);
    assert.equal(events.at(-1)?.event, 'completed');
  });
});

describe('DELETE /jobs/:id', () => {
  let smtp: TestSmtp;
  let t: TestApp;

  before(async () => {
    smtp = await startSmtp();
    // No workers yet: jobs wait, so there is something to cancel.
    t = await createTestApp({ SMTP_URL: smtp.url });
  });
  after(async () => {
    await t.close();
    await smtp.close();
  });

  const signup = async (email: string) => {
    const res = await request(t.app).post('/signup').send({ email, name: 'Cal' }).expect(202);
    return String(res.headers.location);
  };

  it('when a waiting job is cancelled, then it reads cancelled at once and no worker ever runs it', async () => {
    const location = await signup('cancelled@example.com');
    const res = await request(t.app).delete(location).expect(200);
    assert.equal((res.body as { state: string }).state, 'cancelled');
    const status = await request(t.app).get(location).expect(200);
    // DELETE's body is what GET shows, with a plain reason.
    assert.deepEqual(res.body, status.body);
    assert.equal((status.body as { error: string }).error, 'cancelled on request');
    // Cancelling again changes nothing: a 409 with the status.
    const again = await request(t.app).delete(location).expect(409);
    assert.match((again.body as { error: string }).error, /is already cancelled$/);
    assert.deepEqual((again.body as { status: unknown }).status, status.body);

    const kept = await signup('kept@example.com');
    t.startWorkers();
    await smtp.waitFor((m) => m.to.includes('kept@example.com'));
    await eventually(async () => {
      const res = await request(t.app).get(location).expect(200);
      return (res.body as { finishedAt?: string }).finishedAt ? true : undefined;
    });
    const dropped = (await request(t.app).get(location)).body as Record<string, unknown>;
    assert.equal(dropped.state, 'cancelled');
    assert.equal(dropped.attempts, 0, 'dropped at pickup, never run');
    assert.ok(!smtp.received.some((m) => m.to.includes('cancelled@example.com')), 'no mail');
    await request(t.app).delete(kept).expect(409);
  });

  it('when the id is unknown or malformed, then it answers 404', async () => {
    for (const id of [randomUUID(), 'not-a-uuid'])
      await request(t.app).delete(`/jobs/${id}`).expect(404);
  });
});
