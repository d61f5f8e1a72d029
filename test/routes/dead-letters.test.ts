import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import request from 'supertest';
import makeThumbnail, { uploadKey } from '../../jobs/make-thumbnail.js';
import { createTestApp, eventually, type TestApp } from '../harness/app.js';
import { makeImage } from '../harness/images.js';

const PASSWORD = 'correct horse battery staple';

describe('GET /admin/jobs/failed and POST /admin/jobs/:id/replay', () => {
  let t: TestApp;
  let failedId: string;

  before(async () => {
    t = await createTestApp({ ADMIN_PASSWORD: PASSWORD, ADMIN_WRITES: 'true' });
    t.startWorkers();
    // An upload that is not in storage: make-thumbnail fails for good, at once.
    const accepted = await t.offloader.enqueue(makeThumbnail, { key: uploadKey(randomUUID()) });
    failedId = accepted.id;
    const status = await eventually(async () => {
      const current = await t.offloader.status(failedId);
      return current?.state === 'failed' ? current : undefined;
    });
    assert.match(status.error ?? '', /upload/);
  });
  after(() => t.close());

  const admin = () => request.agent(t.app).auth('admin', PASSWORD);

  it('when no password is given, then both answer 401', async () => {
    await request(t.app).get('/admin/jobs/failed').expect(401);
    await request(t.app).post(`/admin/jobs/${failedId}/replay`).send({}).expect(401);
  });

  it('when an admin lists failed jobs, then the dead letter is there with its error and history', async () => {
    const res = await admin().get('/admin/jobs/failed').expect(200);
    assert.equal(res.headers['cache-control'], 'no-store');
    const body = res.body as { jobs: Record<string, unknown>[]; more: boolean; limit: number };
    assert.equal(body.limit, 20);
    assert.equal(body.more, false);
    assert.equal(body.jobs.length, 1);
    const [job] = body.jobs;
    assert.equal(job?.id, failedId);
    assert.equal(job.name, 'make-thumbnail');
    assert.equal(job.queue, 'media');
    assert.equal(job.attempts, 1);
    assert.match(String(job.error), /upload/);
    assert.equal((job.history as string[]).length, 1);
    assert.ok(!('input' in job), 'never the input');

    const media = await admin().get('/admin/jobs/failed?queue=media&limit=5').expect(200);
    assert.equal((media.body as { jobs: unknown[] }).jobs.length, 1);
    const mail = await admin().get('/admin/jobs/failed?queue=mail').expect(200);
    assert.deepEqual((mail.body as { jobs: unknown[] }).jobs, []);
  });

  it('when the query is bad, then 400 names the problem', async () => {
    const tooMany = await admin().get('/admin/jobs/failed?limit=500').expect(400);
    assert.match(JSON.stringify(tooMany.body), /limit/);
    const unknown = await admin().get('/admin/jobs/failed?queue=nope').expect(400);
    assert.match((unknown.body as { error: string }).error, /no queue named "nope"/);
  });

  it('when the corrected input is invalid, then 400 names the problems and the job stays failed', async () => {
    const res = await admin()
      .post(`/admin/jobs/${failedId}/replay`)
      .send({ input: { key: 'not-an-upload' } })
      .expect(400);
    assert.match(JSON.stringify((res.body as { problems: string[] }).problems), /key: /);
    assert.equal((await t.offloader.status(failedId))?.state, 'failed');
  });

  it('when a replay comes from another site’s page, then it is refused (CSRF)', async () => {
    await admin()
      .post(`/admin/jobs/${failedId}/replay`)
      .set('Sec-Fetch-Site', 'cross-site')
      .send({})
      .expect(403);
    assert.equal((await t.offloader.status(failedId))?.state, 'failed');
  });

  it('when the id is unknown, then 404', async () => {
    await admin().post(`/admin/jobs/${randomUUID()}/replay`).send({}).expect(404);
  });

  it('when a failed job is replayed with corrected input, then 202 points at the same status URL and the job completes; a second replay is 409', async () => {
    const key = uploadKey(randomUUID());
    await t.deps.storage.put(key, Readable.from([await makeImage('png', 64, 48)]));
    const res = await admin()
      .post(`/admin/jobs/${failedId}/replay`)
      .send({ input: { key } })
      .expect(202);
    assert.equal(res.headers.location, `/jobs/${failedId}`);
    assert.equal((res.body as { id: string }).id, failedId);

    const status = await eventually(async () => {
      const current = (await request(t.app).get(`/jobs/${failedId}`).expect(200)).body as {
        state: string;
        result?: { thumbnails: unknown[] };
      };
      return current.state === 'completed' ? current : undefined;
    });
    assert.ok((status.result?.thumbnails.length ?? 0) > 0);
    const again = await admin().post(`/admin/jobs/${failedId}/replay`).send({}).expect(409);
    assert.match((again.body as { error: string }).error, /is completed/);
    const page = await admin().get('/admin/jobs/failed').expect(200);
    assert.deepEqual((page.body as { jobs: unknown[] }).jobs, []);
  });
});

describe('dead letters without ADMIN_PASSWORD', () => {
  let t: TestApp;
  before(async () => {
    t = await createTestApp();
  });
  after(() => t.close());

  it('when the admin area is off, then both routes are 404', async () => {
    const auth = `Basic ${Buffer.from(`admin:${PASSWORD}`).toString('base64')}`;
    await request(t.app).get('/admin/jobs/failed').set('Authorization', auth).expect(404);
    await request(t.app).post(`/admin/jobs/${randomUUID()}/replay`).send({}).expect(404);
  });
});

describe('dead letters with ADMIN_WRITES off', () => {
  let t: TestApp;
  before(async () => {
    t = await createTestApp({ ADMIN_PASSWORD: PASSWORD });
  });
  after(() => t.close());

  it('when writes are off, then listing works and a replay is refused with 403 saying why', async () => {
    const admin = () => request.agent(t.app).auth('admin', PASSWORD);
    await admin().get('/admin/jobs/failed').expect(200);
    const res = await admin().post(`/admin/jobs/${randomUUID()}/replay`).send({}).expect(403);
    assert.match((res.body as { error: string }).error, /ADMIN_WRITES=true/);
  });
});
