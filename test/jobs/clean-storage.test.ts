import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { cleanStorage } from '../../jobs/index.js';
import { createLogger } from '../../src/logger.js';
import { runJob } from '../../src/offload/index.js';
import { createTestApp, type TestApp } from '../harness/app.js';

const log = createLogger('silent', 'test');
const HOUR = 3_600_000;

describe('clean-storage job', () => {
  let t: TestApp;

  before(async () => {
    t = await createTestApp({ FILE_MAX_AGE_HOURS: '24' });
  });
  after(() => t.close());

  /** Stores a file and sets its modification time to `ageMs` ago. */
  async function file(key: string, ageMs: number) {
    await t.deps.storage.put(key, Readable.from([Buffer.from(key)]));
    const when = new Date(Date.now() - ageMs);
    await utimes(join(t.config.STORAGE_DIR, ...key.split('/')), when, when);
  }

  it('when temporary files are older than FILE_MAX_AGE_HOURS, then they are deleted, and newer ones and other prefixes are kept', async () => {
    const id = () => randomUUID();
    const old = [
      `uploads/${id()}`,
      `thumbnails/${id()}-128.webp`,
      `thumbnails/${id()}-512.webp`,
      `reports/${id()}/roster.json`,
    ];
    const recent = [
      `uploads/${id()}`,
      `thumbnails/${id()}-128.webp`,
      `reports/${id()}/roster.json`,
    ];
    const elsewhere = ['keep/x.zip', 'uploadsx/old.txt', 'reportsx/r.zip'];
    for (const key of old) await file(key, 25 * HOUR);
    for (const key of recent) await file(key, 23 * HOUR);
    for (const key of elsewhere) await file(key, 1000 * HOUR);

    const result = await runJob(
      cleanStorage,
      {},
      { jobId: 'clean-1', attempt: 1, log, deps: t.deps, progress: () => Promise.resolve() },
    );

    assert.deepEqual(result, { deleted: old.length, kept: recent.length });
    for (const key of old) assert.equal(await t.deps.storage.stat(key), null, `${key} deleted`);
    for (const key of [...recent, ...elsewhere]) {
      assert.ok(await t.deps.storage.stat(key), `${key} kept`);
    }

    // A second run finds nothing more to delete (jobs may run twice).
    assert.deepEqual(
      await runJob(
        cleanStorage,
        {},
        { jobId: 'clean-2', attempt: 1, log, deps: t.deps, progress: () => Promise.resolve() },
      ),
      { deleted: 0, kept: recent.length },
    );
  });
});
