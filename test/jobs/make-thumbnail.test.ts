import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { QueueEvents } from 'bullmq';
import sharp from 'sharp';
import { makeThumbnail } from '../../jobs/index.js';
import { uploadKey } from '../../jobs/make-thumbnail.js';
import type { Deps } from '../../src/deps.js';
import { createLogger } from '../../src/logger.js';
import {
  FINAL_STATES,
  QueueUnavailableError,
  runJob,
  type JobStatus,
} from '../../src/offload/index.js';
import { createTestApp, eventually, type TestApp } from '../harness/app.js';
import { makeImage, pixelBombPng, truncate, type Format } from '../harness/images.js';

const log = createLogger('silent', 'test');

type Result = Awaited<ReturnType<typeof makeThumbnail.run>>;

/** Stores `file` as a fresh upload, as POST /thumbnails would; returns its key. */
async function upload(deps: Deps, file: Buffer): Promise<string> {
  const key = uploadKey(randomUUID());
  await deps.storage.put(key, Readable.from([file]));
  return key;
}

/** Runs the job in this process, as the worker would (input checked, time limit on). */
async function thumbnail(deps: Deps, key: string, progress: unknown[] = []): Promise<Result> {
  const result = await runJob(
    makeThumbnail,
    { key },
    {
      jobId: 'direct',
      attempt: 1,
      log,
      deps,
      progress: (value) => {
        progress.push(value);
        return Promise.resolve();
      },
    },
  );
  return result as Result;
}

/** The thumbnail's key, from its signed link; asserts the link is genuine and unexpired. */
function keyOfLink(deps: Deps, url: string): string {
  const link = new URL(url, 'http://app.test');
  assert.ok(link.pathname.startsWith('/files/'), url);
  const key = link.pathname.slice('/files/'.length);
  const verdict = deps.signer.verify(
    key,
    link.searchParams.get('exp') ?? undefined,
    link.searchParams.get('sig') ?? undefined,
  );
  assert.equal(verdict.ok, true, `the link ${url} verifies`);
  return key;
}

/** Reads a stored thumbnail back and checks it against what the result says about it. */
async function readBack(deps: Deps, thumb: Result['thumbnails'][number]) {
  const key = keyOfLink(deps, thumb.url);
  const file = await buffer(await deps.storage.get(key));
  assert.equal(thumb.bytes, file.length, `bytes of ${key}`);
  const meta = await sharp(file).metadata();
  assert.equal(meta.format, 'webp', key);
  assert.equal(meta.width, thumb.width, key);
  assert.equal(meta.height, thumb.height, key);
  return { key, meta };
}

const idOf = (key: string) => key.slice('uploads/'.length);

describe('make-thumbnail job', () => {
  describe('run directly', () => {
    let t: TestApp;

    before(async () => {
      t = await createTestApp({ THUMBNAIL_WIDTHS: '128,512,1024' });
    });
    after(() => t.close());

    it('when a 3000×2000 JPEG is given, then it makes WebP thumbnails 128, 512 and 1024 wide with its aspect, under signed links', async () => {
      const original = await makeImage('jpeg', 3000, 2000);
      const key = await upload(t.deps, original);
      const result = await thumbnail(t.deps, key);

      assert.deepEqual(result.original, {
        format: 'jpeg',
        width: 3000,
        height: 2000,
        bytes: original.length,
      });
      assert.deepEqual(
        result.thumbnails.map(({ width, height }) => [width, height]),
        [
          [128, 85],
          [512, 341],
          [1024, 683],
        ],
      );
      for (const [i, thumb] of result.thumbnails.entries()) {
        const { key: thumbKey } = await readBack(t.deps, thumb);
        assert.equal(thumbKey, `thumbnails/${idOf(key)}-${[128, 512, 1024][i]}.webp`);
      }
    });

    it('when a JPEG carries EXIF orientation 6 and camera fields, then the thumbnails stand upright and carry no EXIF', async () => {
      const original = await makeImage('jpeg', 600, 400, { orientation: 6, exif: true });
      const before = await sharp(original).metadata();
      assert.equal(before.orientation, 6, 'the input is rotated by EXIF');
      assert.ok(before.exif, 'the input carries EXIF');

      const result = await thumbnail(t.deps, await upload(t.deps, original));
      assert.deepEqual(
        { format: result.original.format, width: result.original.width },
        { format: 'jpeg', width: 400 },
      );
      assert.equal(result.original.height, 600, 'the original is described upright');
      assert.deepEqual(
        result.thumbnails.map(({ width, height }) => [width, height]),
        [
          [128, 192],
          [400, 600],
        ],
      );
      for (const thumb of result.thumbnails) {
        const { key, meta } = await readBack(t.deps, thumb);
        assert.equal(meta.exif, undefined, `${key} has no EXIF`);
        assert.equal(meta.orientation, undefined, `${key} has no orientation tag`);
      }
    });

    it('when the image is narrower than some widths, then it is never enlarged, and a second run overwrites the same files', async () => {
      const key = await upload(t.deps, await makeImage('png', 300, 200));
      const thumbnailsDir = join(t.config.STORAGE_DIR, 'thumbnails');
      const mine = async () =>
        (await readdir(thumbnailsDir)).filter((name) => name.includes(idOf(key))).sort();

      const first = await thumbnail(t.deps, key);
      assert.deepEqual(
        first.thumbnails.map(({ width, height }) => [width, height]),
        [
          [128, 85],
          [300, 200],
        ],
      );
      for (const thumb of first.thumbnails) await readBack(t.deps, thumb);
      const files = await mine();
      assert.deepEqual(files, [`${idOf(key)}-128.webp`, `${idOf(key)}-300.webp`]);
      const inodes = await Promise.all(files.map((f) => stat(join(thumbnailsDir, f))));

      const second = await thumbnail(t.deps, key);
      assert.deepEqual(
        second.thumbnails.map(({ width, height, bytes }) => [width, height, bytes]),
        first.thumbnails.map(({ width, height, bytes }) => [width, height, bytes]),
      );
      // Every name in the directory, temp files (dotfiles) included: nothing left beside them.
      assert.deepEqual(await mine(), files, 'the same keys, and no other file');
      const again = await Promise.all(files.map((f) => stat(join(thumbnailsDir, f))));
      for (const [i, info] of again.entries()) {
        assert.notEqual(info.ino, inodes[i]!.ino, `${files[i]!} was replaced by the re-run`);
      }
    });

    for (const format of ['png', 'webp', 'gif', 'avif'] satisfies Format[]) {
      it(`when the upload is a ${format}, then it is thumbnailed`, async () => {
        // Small: GIF's encoder takes seconds to quantize a large noisy picture.
        const original = await makeImage(format, 320, 240);
        const result = await thumbnail(t.deps, await upload(t.deps, original));
        assert.deepEqual(result.original, {
          format,
          width: 320,
          height: 240,
          bytes: original.length,
        });
        assert.deepEqual(
          result.thumbnails.map(({ width, height }) => [width, height]),
          [
            [128, 96],
            [320, 240],
          ],
        );
        for (const thumb of result.thumbnails) await readBack(t.deps, thumb);
      });
    }

    it('when it runs, then it reports progress once per size, rising to 100', async () => {
      const progress: unknown[] = [];
      const key = await upload(t.deps, await makeImage('jpeg', 1200, 800));
      const result = await thumbnail(t.deps, key, progress);
      assert.equal(result.thumbnails.length, 3);
      assert.deepEqual(progress, [33, 67, 100]);
    });
  });

  describe('through a worker', () => {
    let t: TestApp;

    before(async () => {
      // A small pixel limit, so a modest image is too large. (The pixel bomb is tried below
      // under the default limit, which its header does not exceed: there, only its data fails.)
      t = await createTestApp({ IMAGE_MAX_PIXELS: '10000' });
      t.startWorkers();
    });
    after(() => t.close());

    /** Enqueues a thumbnail of `key`; resolves with its status once it failed or will retry. */
    async function outcome(key: string): Promise<JobStatus> {
      const { id } = await t.offloader.enqueue(makeThumbnail, { key });
      return eventually(
        async () => {
          const status = await t.offloader.status(id);
          // Finished, or delayed with an error: waiting to retry (which must not happen here).
          return status && (FINAL_STATES.has(status.state) || status.error) ? status : undefined;
        },
        15_000,
        `job ${id} finished or failed once`,
      );
    }

    async function failsOnce(key: string, why: RegExp) {
      const status = await outcome(key);
      assert.equal(status.state, 'failed', JSON.stringify(status));
      assert.equal(status.attempts, 1, 'no retry: retrying cannot mend the image');
      assert.match(status.error ?? '', why);
    }

    it('when the upload is a truncated JPEG, then the job fails after one attempt, saying why', async () => {
      const key = await upload(t.deps, truncate(await makeImage('jpeg', 90, 90)));
      await failsOnce(key, /could not be decoded: .*(premature end|truncated)/i);
    });

    it('when the upload exceeds IMAGE_MAX_PIXELS, then the job fails after one attempt, saying why', async () => {
      const key = await upload(t.deps, await makeImage('png', 200, 200));
      await failsOnce(key, /could not be decoded: .*pixel limit/i);
    });

    it('when the upload is missing, then the job fails after one attempt, saying why', async () => {
      await failsOnce(uploadKey(randomUUID()), /the upload uploads\/[0-9a-f-]{36} is gone/);
    });

    it('when an image under the limit succeeds here, then the failures above are about the images (control)', async () => {
      const key = await upload(t.deps, await makeImage('png', 100, 100));
      const status = await outcome(key);
      assert.equal(status.state, 'completed', JSON.stringify(status));
      assert.equal(status.attempts, 1);
    });
  });

  describe('through a worker, with the default pixel limit', () => {
    let t: TestApp;

    before(async () => {
      t = await createTestApp();
      t.startWorkers();
    });
    after(() => t.close());

    it('when a PNG header declares 8000×5000 but holds 8×8 of data, then the job fails after one attempt, saying why', async () => {
      assert.equal(8000 * 5000, t.config.IMAGE_MAX_PIXELS, 'the bomb is within the pixel limit');
      const key = await upload(t.deps, await pixelBombPng(8000, 5000));
      const { id } = await t.offloader.enqueue(makeThumbnail, { key });
      const status = await eventually(
        async () => {
          const s = await t.offloader.status(id);
          return s && (FINAL_STATES.has(s.state) || s.error) ? s : undefined;
        },
        15_000,
        'the bomb job ended',
      );
      assert.equal(status.state, 'failed', JSON.stringify(status));
      assert.equal(status.attempts, 1);
      assert.match(status.error ?? '', /could not be decoded: .*png read error/);
    });
  });

  describe('under load', () => {
    let t: TestApp;
    let events: QueueEvents | undefined;

    before(async () => {
      t = await createTestApp({
        WORKER_LOCK_MS: '1000',
        WORKER_STALLED_INTERVAL_MS: '500',
        WORKER_CONCURRENCY: '4',
      });
    });
    after(async () => {
      await events?.close();
      await t.close();
    });

    it('when 8 large images are thumbnailed 4 at a time with 1 s locks, then every job runs once and none stalls', async () => {
      events = new QueueEvents('media', {
        connection: { url: t.config.REDIS_URL },
        prefix: t.config.QUEUE_PREFIX,
      });
      const stalled: string[] = [];
      events.on('stalled', ({ jobId }) => stalled.push(jobId));
      await events.waitUntilReady();

      // One picture under eight keys: each job decodes and resizes it in full all the same.
      const original = await makeImage('jpeg', 3000, 2000);
      const keys = await Promise.all(Array.from({ length: 8 }, () => upload(t.deps, original)));
      const ids = await Promise.all(
        keys.map(async (key) => (await t.offloader.enqueue(makeThumbnail, { key })).id),
      );
      t.startWorkers();

      const statuses = await eventually(
        async () => {
          // A blocked event loop also times out these reads: keep polling, let the checks speak.
          const all = await Promise.all(ids.map((id) => t.offloader.status(id))).catch(
            (error: unknown) => {
              if (error instanceof QueueUnavailableError) return [];
              throw error;
            },
          );
          return all.length === ids.length && all.every((s) => s && FINAL_STATES.has(s.state))
            ? all
            : undefined;
        },
        25_000,
        'all 8 jobs finished',
      ).catch((error: unknown) => {
        throw new Error(`${(error as Error).message} (stalled events: ${stalled.length})`);
      });
      for (const status of statuses) {
        assert.equal(status?.state, 'completed', JSON.stringify(status));
        assert.equal(status.attempts, 1, `${status.id} ran once`);
      }
      assert.deepEqual(stalled, [], 'no job lost its lock');
    });
  });
});
