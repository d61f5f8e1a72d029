import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import request from 'supertest';
import { zipReport } from '../../jobs/index.js';
import { createLogger } from '../../src/logger.js';
import { PermanentError, runJob } from '../../src/offload/index.js';
import { chunkKey, zipKey } from '../../src/reports/store.js';
import { createTestApp, eventually, type TestApp } from '../harness/app.js';

const log = createLogger('silent', 'test');

describe('zip-report job', () => {
  let t: TestApp;
  let reports: Queue;
  before(async () => {
    t = await createTestApp({ REPORT_CHUNK_SIZE: '5' });
    reports = new Queue('reports', {
      connection: { url: t.config.REDIS_URL },
      prefix: t.config.QUEUE_PREFIX,
    });
    t.startWorkers();
  });
  after(async () => {
    await reports.close();
    await t.close();
  });

  it('when a chunk zip is gone by the time it runs again, then it fails for good naming the chunk, stores no zip and enqueues no mail', async () => {
    const res = await request(t.app)
      .post('/reports')
      .send({ email: 'gone@example.edu', sample: 12 })
      .expect(202);
    const { id } = res.body as { id: string };
    await eventually(
      async () => ((await t.offloader.status(id))?.state === 'completed' ? true : undefined),
      20_000,
      'report completed',
    );
    const job = await reports.getJob(id);
    const input = (job?.data as { input: { reportId: string } }).input;
    const { reportId } = input;

    // The clean-up took the middle chunk and the zip; the zip step runs again.
    await t.deps.storage.delete(chunkKey(reportId, 5));
    await t.deps.storage.delete(zipKey(reportId));
    let enqueued = 0;
    await assert.rejects(
      runJob(zipReport, input, {
        jobId: id,
        attempt: 2,
        log,
        deps: t.deps,
        progress: () => Promise.resolve(),
        enqueue: () => {
          enqueued++;
          return Promise.reject(new Error('no mail may be enqueued'));
        },
      }),
      (error: unknown) =>
        error instanceof PermanentError &&
        error.message === `${chunkKey(reportId, 5)} is gone (cleaned up?)`,
    );
    assert.equal(enqueued, 0, 'no mail enqueued');
    assert.equal(await t.deps.storage.stat(zipKey(reportId)), null, 'no zip stored');
    const left = await readdir(join(t.config.STORAGE_DIR, 'reports', reportId));
    assert.deepEqual(left.sort(), ['chunks', 'roster.json'], 'no temp file left behind');
  });
});
