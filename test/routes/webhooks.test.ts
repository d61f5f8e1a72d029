import assert from 'node:assert/strict';
import request from 'supertest';
import { signWebhookBody } from '../../jobs/call-webhook.js';
import { createTestApp, eventually, type TestApp } from '../harness/app.js';
import { startReceiver, type Receiver } from '../harness/receiver.js';

const SECRET = 'a-test-signing-secret-of-at-least-32-characters';

describe('POST /webhooks', () => {
  let receiver: Receiver;
  before(async () => {
    receiver = await startReceiver();
  });
  after(() => receiver.close());

  describe('with WEBHOOK_ALLOW_PRIVATE=true (queue mode, workers running)', () => {
    let t: TestApp;
    before(async () => {
      t = await createTestApp({ WEBHOOK_ALLOW_PRIVATE: 'true', SIGNING_SECRET: SECRET });
      t.startWorkers();
    });
    after(() => t.close());

    it('when the body is valid, then it answers 202 with Location, and the receiver gets the signed call', async () => {
      receiver.script('/route-ok', [{ status: 200 }]);
      const res = await request(t.app)
        .post('/webhooks')
        .send({ url: receiver.url('/route-ok'), event: 'user.created', payload: { id: 7 } })
        .expect(202);
      const { id, name } = res.body as { id: string; name: string };
      assert.equal(name, 'call-webhook');
      assert.equal(res.headers.location, `/jobs/${id}`);
      const status = await eventually(async () => {
        const body = (await request(t.app).get(`/jobs/${id}`).expect(200)).body as {
          state: string;
          result?: { status: number };
        };
        return body.state === 'completed' ? body : undefined;
      });
      assert.equal(status.result?.status, 200);
      const [call] = receiver.received('/route-ok');
      assert.ok(call);
      assert.equal(call.headers['idempotency-key'], id);
      assert.equal(call.headers['x-offload-signature'], signWebhookBody(SECRET, call.body));
    });

    it('when a POST is repeated with the same Idempotency-Key, then it answers the same job, and the receiver is called once', async () => {
      receiver.script('/route-once', [{ status: 200 }]);
      const key = `webhook-${'k'.repeat(20)}`;
      const post = () =>
        request(t.app)
          .post('/webhooks')
          .set('Idempotency-Key', key)
          .send({ url: receiver.url('/route-once'), event: 'e', payload: {} })
          .expect(202);
      const first = (await post()).body as { id: string };
      const again = (await post()).body as { id: string };
      assert.equal(again.id, first.id);
      await eventually(async () => {
        const body = (await request(t.app).get(`/jobs/${first.id}`).expect(200)).body as {
          state: string;
        };
        return body.state === 'completed' ? true : undefined;
      });
      assert.equal(receiver.received('/route-once').length, 1);
    });

    it('when the body is bad, then it answers 400 naming every problem and enqueues nothing', async () => {
      const before = await t.countJobs('webhooks');
      const res = await request(t.app)
        .post('/webhooks')
        .send({
          url: 'ftp://example.com/x',
          event: 'bad event\r\nX: y',
          payload: { big: 'x'.repeat(9_000) },
          extra: true,
        })
        .expect(400);
      const problems = (res.body as { problems: string[] }).problems.join('\n');
      assert.match(problems, /^url: must be an http or https URL$/m);
      assert.match(problems, /^event: letters, digits/m);
      assert.match(problems, /^payload: must be at most 8192 bytes as JSON$/m);
      assert.match(problems, /Unrecognized key: "extra"/);
      await request(t.app)
        .post('/webhooks')
        .send({ url: 'https://user:pw@example.com/', event: 'e', payload: {} })
        .expect(400, /must not contain a user name or password/);
      assert.equal(await t.countJobs('webhooks'), before);
    });
  });

  describe('with WEBHOOK_ALLOW_PRIVATE unset (inline mode)', () => {
    let t: TestApp;
    before(async () => {
      t = await createTestApp({ OFFLOAD_MODE: 'inline' });
    });
    after(() => t.close());

    it('when the URL names a private, loopback or link-local host, then it answers 400 and calls nothing', async () => {
      receiver.script('/route-private', [{ status: 200 }]);
      for (const url of [
        receiver.url('/route-private'),
        'http://localhost:9/x',
        'http://169.254.169.254/latest/meta-data/',
        'http://[::1]/x',
        'http://10.0.0.8/x',
      ]) {
        const res = await request(t.app)
          .post('/webhooks')
          .send({ url, event: 'e', payload: {} })
          .expect(400);
        assert.match((res.body as { problems: string[] }).problems.join('\n'), /^url: must not/m);
      }
      assert.equal(receiver.received('/route-private').length, 0);
    });
  });
});
