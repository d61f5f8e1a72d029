// Issue #8, item 7: access. A status URL is a capability (random id, never the input); the
// admin area refuses without its password; download links refuse when expired, altered or
// moved to another file; no route reads a file outside where it should.
// test/routes/files.test.ts covers signed links in depth (expiry, every tampering, traversal
// with a *valid* signature, the storage never touched); test/admin-auth.test.ts the password
// and CSRF rules. This file checks the same promises across the whole app, on real jobs.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Job, Queue } from 'bullmq';
import request from 'supertest';
import { createUrlSigner } from '../../src/storage/index.js';
import { createTestApp, eventually, type TestApp } from '../harness/app.js';
import { makeImage } from '../harness/images.js';
import { startReceiver, type Receiver } from '../harness/receiver.js';

const SECRET = 'access-test-signing-secret-0123456789abc';
const PASSWORD = 'access-test-admin-password';
const OUTSIDE = 'this file is outside every directory the app serves';
const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('reliability: access', function () {
  this.timeout(60_000);
  let t: TestApp;
  let receiver: Receiver;
  let parent: string;

  before(async () => {
    parent = await mkdtemp(join(tmpdir(), 'offload-access-'));
    await writeFile(join(parent, 'secret.txt'), OUTSIDE);
    receiver = await startReceiver();
    receiver.script('/hook', [{ status: 204 }]);
    // SMTP_URL unset: mail goes to the outbox, so /dev/outbox is mounted and tried too.
    t = await createTestApp({
      STORAGE_DIR: join(parent, 'storage'),
      OUTBOX_DIR: join(parent, 'outbox'),
      SIGNING_SECRET: SECRET,
      ADMIN_PASSWORD: PASSWORD,
      ADMIN_WRITES: 'true',
      WEBHOOK_ALLOW_PRIVATE: 'true',
      THUMBNAIL_WIDTHS: '16,32',
    });
    t.startWorkers();
  });
  after(async () => {
    await t.close();
    await receiver.close();
  });

  const completed = (id: string) =>
    eventually(
      async () => {
        const res = await request(t.app).get(`/jobs/${id}`);
        const body = res.body as { state: string };
        return body.state === 'completed' ? res : undefined;
      },
      20_000,
      `job ${id} completed`,
    );

  it('when jobs are accepted, then their ids are random v4 UUIDs, and counters or neighbouring ids find nothing', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) {
      const res = await request(t.app)
        .post('/signup')
        .send({ email: `id${i}@example.com`, name: 'Id' })
        .expect(202);
      ids.push((res.body as { id: string }).id);
    }
    assert.equal(new Set(ids).size, ids.length);
    for (const id of ids) assert.match(id, UUID_V4);
    // BullMQ's own ids would be counters: none exists, under any name.
    const queue = new Queue('mail', {
      connection: { url: t.config.REDIS_URL },
      prefix: t.config.QUEUE_PREFIX,
    });
    try {
      for (let n = 1; n <= 25; n++) {
        assert.equal(await Job.fromId(queue, String(n)), undefined, `a job ${n} exists`);
        await request(t.app).get(`/jobs/${n}`).expect(404);
      }
    } finally {
      await queue.close();
    }
    // Neighbours of a real id (last group ±1) are not jobs.
    for (const id of ids.slice(0, 5)) {
      const last = BigInt(`0x${id.slice(24)}`);
      for (const near of [last - 1n, last + 1n]) {
        const guess = `${id.slice(0, 24)}${near.toString(16).padStart(12, '0')}`;
        await request(t.app).get(`/jobs/${guess}`).expect(404);
        await request(t.app).get(`/jobs/${guess}/events`).expect(404);
        await request(t.app).delete(`/jobs/${guess}`).expect(404);
      }
    }
  });

  it('when a job is read in any way (202, status, events, while waiting and when done), then its input never shows', async () => {
    const marker = randomUUID().slice(0, 8);
    const email = `secret-${marker}@example.com`;
    const posts = [
      request(t.app)
        .post('/signup')
        .send({ email, name: `Name ${marker}` }),
      request(t.app)
        .post('/webhooks')
        .send({
          url: `${receiver.url('/hook')}?token=${marker}`,
          event: `ev.${marker}`,
          payload: { marker },
        }),
      request(t.app)
        .post('/reports')
        .send({ email, title: `Title ${marker}`, sample: 2 }),
      request(t.app)
        .post('/thumbnails')
        .attach('image', await makeImage('png', 40, 30), `photo-${marker}.png`),
    ];
    for (const post of posts) {
      const accepted = await post.expect(202);
      const id = (accepted.body as { id: string }).id;
      const seen = [
        JSON.stringify(accepted.body),
        JSON.stringify(accepted.headers),
        JSON.stringify((await request(t.app).get(`/jobs/${id}`)).body),
      ];
      await completed(id);
      seen.push(JSON.stringify((await request(t.app).get(`/jobs/${id}`)).body));
      seen.push((await request(t.app).get(`/jobs/${id}/events`).buffer(true)).text);
      for (const text of seen)
        assert.ok(!text.includes(marker), `job ${id} showed its input: ${text}`);
    }
  });

  it('when the admin area is asked without the password or with a wrong one, then it refuses (401), and answers with it', async () => {
    const wrong = `Basic ${Buffer.from(`admin:${PASSWORD}x`).toString('base64')}`;
    const right = `Basic ${Buffer.from(`admin:${PASSWORD}`).toString('base64')}`;
    const areas: [method: 'get' | 'post', path: string][] = [
      ['get', '/admin/queues'],
      ['get', '/admin/queues/api/queues'],
      ['get', '/admin/jobs/failed'],
      ['post', `/admin/jobs/${randomUUID()}/replay`],
    ];
    for (const [method, path] of areas) {
      for (const auth of [undefined, wrong, 'Bearer x', 'Basic !!!']) {
        const req = request(t.app)[method](path);
        if (auth) req.set('Authorization', auth);
        const res = await req;
        assert.equal(res.status, 401, `${method} ${path} with ${auth}`);
        assert.ok(!res.text.includes('mail'), 'nothing about the queues leaks');
      }
      const res = await request(t.app)[method](path).set('Authorization', right);
      assert.ok(res.status !== 401 && res.status < 500, `${method} ${path}: ${res.status}`);
    }
  });

  it('when a real download link is expired, tampered with or pointed at another file, then 403; untouched, 200', async () => {
    const accepted = await request(t.app)
      .post('/thumbnails')
      .attach('image', await makeImage('png', 40, 30), 'p.png')
      .expect(202);
    const done = await completed((accepted.body as { id: string }).id);
    const [small, large] = (
      done.body as { result: { thumbnails: { url: string }[] } }
    ).result.thumbnails.map((th) => new URL(th.url, 'http://x'));
    await request(t.app).get(`${small!.pathname}${small!.search}`).expect(200);
    const exp = small!.searchParams.get('exp')!;
    const sig = small!.searchParams.get('sig')!;
    const flip = (s: string) => `${s.slice(0, -1)}${s.endsWith('A') ? 'B' : 'A'}`;
    const key = small!.pathname.slice('/files/'.length);
    const expired = createUrlSigner({ secret: SECRET }).signUrl(key, {
      expiresInMs: 1_000,
      now: Date.now() - 60_000,
    });
    for (const url of [
      `${large!.pathname}${small!.search}`, // another file, this file's signature
      `${small!.pathname}?exp=${exp}&sig=${flip(sig)}`,
      `${small!.pathname}?exp=${Number(exp) + 3600}&sig=${sig}`,
      `${small!.pathname}?exp=${exp}`,
      `${small!.pathname}?sig=${sig}`,
      small!.pathname,
      expired,
      `${small!.pathname}?exp=${exp}&sig=${sig}&sig=${sig}`,
    ]) {
      await request(t.app).get(url).expect(403);
    }
  });

  it('when any route is given a path that climbs out, then it answers 4xx and never the file outside', async () => {
    const paths = [
      '/files/..%2Fsecret.txt',
      '/files/..%2F..%2Fsecret.txt',
      '/files/%2e%2e/%2e%2e/secret.txt',
      '/files/storage/..%2F..%2Fsecret.txt',
      `/files/${encodeURIComponent(join(parent, 'secret.txt'))}`,
      '/dev/outbox/..%2Fsecret.txt',
      '/dev/outbox/..%2F..%2Fpackage.json',
      '/dev/outbox/%2e%2e%2fsecret.txt',
      '/dev/outbox/..%5Csecret.txt',
      '/jobs/..%2F..%2Fsecret.txt',
      '/jobs/..%2F..%2Fsecret.txt/events',
      '/..%2F..%2Fpackage.json',
      '/%2e%2e/%2e%2e/package.json',
      '/public/..%2Fpackage.json',
      '/index.html/..%2F..%2Fpackage.json',
      '/..%2Fsrc%2Fconfig.ts',
      '/admin/queues/..%2F..%2Fpackage.json',
    ];
    for (const path of paths) {
      for (const auth of [undefined, `Basic ${Buffer.from(`a:${PASSWORD}`).toString('base64')}`]) {
        const req = request(t.app).get(path);
        if (auth) req.set('Authorization', auth);
        const res = await req.buffer(true).parse((r, done) => {
          const chunks: Buffer[] = [];
          r.on('data', (c: Buffer) => chunks.push(c));
          r.on('end', () => done(null, Buffer.concat(chunks).toString('utf8')));
        });
        assert.ok(res.status >= 400 && res.status < 500, `${path}: ${res.status}`);
        const body = String(res.body);
        assert.ok(
          !body.includes(OUTSIDE) &&
            !body.includes('"name": "offload"') &&
            !body.includes('loadConfig'),
          `${path} leaked a file`,
        );
      }
    }
  });
});
