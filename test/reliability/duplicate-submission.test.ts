// Issue #8, item 8: the same Idempotency-Key sent several times at once → one job, and every
// response names it. test/routes/signup.test.ts proves it for /signup (in queue and inline
// mode, with the one mail delivered); this does the same race on the other POST routes, whose
// duplicates also carry a stored upload or roster that must not be left behind.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import request from 'supertest';
import { registry } from '../../src/process/boot.js';
import { createTestApp, type TestApp } from '../harness/app.js';
import { makeImage } from '../harness/images.js';

const AT_ONCE = 6;

describe('reliability: duplicate submission (the same Idempotency-Key, all at once)', function () {
  this.timeout(30_000);
  let t: TestApp;
  let photo: Buffer;
  let otherPhoto: Buffer;

  // No workers: the jobs stay in their queues to be counted.
  before(async () => {
    t = await createTestApp({ WEBHOOK_ALLOW_PRIVATE: 'true' });
    photo = await makeImage('png', 20, 20);
    otherPhoto = await makeImage('png', 30, 30);
  });
  after(() => t.close());

  const allJobs = async () => {
    let total = 0;
    for (const queue of registry.queues) total += await t.countJobs(queue);
    return total;
  };
  const stored = async () =>
    (await readdir(t.config.STORAGE_DIR, { recursive: true, withFileTypes: true }).catch(() => []))
      .filter((entry) => entry.isFile())
      .map((entry) => entry.name);

  /** Each route's valid request with a key; `other` varies the body (another request). */
  const routes: [
    route: string,
    post: (key: string, other?: boolean) => request.Test,
    jobs: number,
  ][] = [
    [
      '/webhooks',
      (key, other) =>
        request(t.app)
          .post('/webhooks')
          .set('Idempotency-Key', key)
          .send({ url: 'http://127.0.0.1:9/hook', event: 'dup.test', payload: { other } }),
      1,
    ],
    [
      '/thumbnails',
      (key, other) =>
        request(t.app)
          .post('/thumbnails')
          .set('Idempotency-Key', key)
          .attach('image', other ? otherPhoto : photo, 'p.png'),
      1,
    ],
    [
      '/reports',
      (key, other) =>
        request(t.app)
          .post('/reports')
          .set('Idempotency-Key', key)
          .send({ email: 'dup@example.com', sample: other ? 40 : 3 }),
      2, // its chunk and its zip step
    ],
  ];

  for (const [route, post, jobs] of routes) {
    it(`when ${AT_ONCE} POST ${route} with one key arrive at once, then one job is made, every response names it, and one stored file is kept`, async () => {
      const key = `dup-${randomUUID()}`;
      const [jobsBefore, filesBefore] = [await allJobs(), (await stored()).length];
      const responses = await Promise.all(Array.from({ length: AT_ONCE }, () => post(key)));
      for (const res of responses) assert.equal(res.status, 202, res.text);
      const ids = new Set(responses.map((res) => (res.body as { id: string }).id));
      assert.equal(ids.size, 1, 'one job id in every response');
      const [id] = ids;
      for (const res of responses) assert.equal(res.headers.location, `/jobs/${id}`);
      const fresh = responses.filter((res) => res.headers['idempotent-replayed'] === undefined);
      assert.equal(fresh.length, 1, 'exactly one response made the job');
      assert.equal(await allJobs(), jobsBefore + jobs);
      const kept = (await stored()).length - filesBefore;
      assert.equal(kept, route === '/webhooks' ? 0 : 1, 'the duplicates dropped what they stored');
    });
  }

  for (const [route, post] of routes) {
    it(`when POST ${route} comes back with its key and another body, then it answers 422 and nothing is enqueued or stored; the same body again gets the first answer`, async () => {
      const key = `conflict-${randomUUID()}`;
      const first = await post(key);
      assert.equal(first.status, 202, first.text);
      const [jobsBefore, filesBefore] = [await allJobs(), (await stored()).length];
      const conflict = await post(key, true);
      assert.equal(conflict.status, 422, conflict.text);
      assert.match((conflict.body as { error: string }).error, /Idempotency-Key was already used/);
      assert.equal(await allJobs(), jobsBefore, 'nothing enqueued');
      assert.equal((await stored()).length, filesBefore, 'nothing stored');
      // The replay describes the stored job and the first request, not the one at hand.
      const replay = await post(key);
      assert.equal(replay.status, 202, replay.text);
      assert.equal(replay.headers['idempotent-replayed'], 'true');
      assert.deepEqual(replay.body, first.body);
      assert.equal(await allJobs(), jobsBefore);
    });
  }

  it('when the same key is used on two routes, then each route makes its own job (keys are scoped per job)', async () => {
    const key = `shared-${randomUUID()}`;
    const [webhook, thumbnail] = await Promise.all([routes[0]![1](key), routes[1]![1](key)]);
    assert.equal(webhook.status, 202);
    assert.equal(thumbnail.status, 202);
    assert.notEqual((webhook.body as { id: string }).id, (thumbnail.body as { id: string }).id);
  });
});
