import assert from 'node:assert/strict';
import { mkdtemp, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { loadConfig } from '../../src/config.js';
import { createStorage } from '../../src/deps.js';
import { sharedRedisUrl } from '../harness/global.js';
import { makeImage } from '../harness/images.js';
import { startS3, type TestS3 } from '../harness/s3.js';
import { startStack, type Stack } from '../harness/stack.js';

/** Every file under `dir`, recursively; none when it was never made. */
async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries.filter((entry) => entry.isFile()).map((entry) => entry.name);
}

describe('web and worker on separate disks, sharing files through S3 (s3rver on loopback)', function () {
  this.timeout(90_000);
  let s3: TestS3 | undefined;
  let stack: Stack | undefined;
  const dirs = { web: '', worker: '' };

  before(async () => {
    const server = (s3 = await startS3());
    const parent = await mkdtemp(join(tmpdir(), 'offload-disks-'));
    dirs.web = join(parent, 'web-storage');
    dirs.worker = join(parent, 'worker-storage');
    stack = await startStack(sharedRedisUrl(), server.env);
    // As on a PaaS: each process has a disk of its own, so a file only the other wrote is not
    // on it. Had a driver fallen back to STORAGE_DIR, the worker would not find the upload.
    await stack.startWeb({ STORAGE_DIR: dirs.web, PUBLIC_URL: stack.base });
    await stack.startWorker({ STORAGE_DIR: dirs.worker, PUBLIC_URL: stack.base });
  });

  /** The stack and the S3 server, both started by `before`. */
  const started = () => {
    assert.ok(stack && s3, 'before() started them');
    return { stack, s3 };
  };

  after(async () => {
    await stack?.close();
    await s3?.close();
  });

  it('when an image is uploaded to web, then the worker makes thumbnails from the bucket and web serves them from it', async () => {
    const { stack, s3 } = started();
    const form = new FormData();
    const photo = await makeImage('jpeg', 800, 600);
    form.append('image', new Blob([photo], { type: 'image/jpeg' }), 'photo.jpg');
    const res = await fetch(`${stack.base}/thumbnails`, { method: 'POST', body: form });
    assert.equal(res.status, 202);
    const { id } = (await res.json()) as { id: string };
    await stack.allCompleted([id], 30_000);
    const { result } = (await stack.status(id)) as unknown as {
      result: { thumbnails: { width: number; url: string }[] };
    };
    assert.deepEqual(
      result.thumbnails.map((t) => t.width),
      [128, 512, 800],
    );
    for (const { width, url } of result.thumbnails) {
      const download = await fetch(`${stack.base}${url}`);
      assert.equal(download.status, 200);
      assert.equal(download.headers.get('content-type'), 'image/webp');
      const meta = await sharp(Buffer.from(await download.arrayBuffer())).metadata();
      assert.deepEqual([meta.format, meta.width], ['webp', width]);
    }
    const worker = stack.workers[0]!;
    assert.ok(worker.lines.some((l) => l.msg === 'job completed' && l.jobId === id));

    // The upload and the thumbnails are objects in the bucket, and on neither disk.
    const storage = createStorage(loadConfig(s3.env));
    const keys: string[] = [];
    for await (const file of storage.list('')) keys.push(file.key);
    assert.equal(keys.filter((key) => key.endsWith('.webp')).length, 3, keys.join(', '));
    assert.ok(
      keys.some((key) => key.startsWith('uploads/')),
      keys.join(', '),
    );
    assert.deepEqual(await filesUnder(dirs.web), []);
    assert.deepEqual(await filesUnder(dirs.worker), []);
  });

  it('when a small report is asked of web, then the worker renders and zips it in the bucket and the mailed link downloads it through web', async () => {
    const { stack } = started();
    const email = 's3-report@example.com';
    const res = await fetch(`${stack.base}/reports`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email, sample: 5 }),
    });
    assert.equal(res.status, 202);
    const { id } = (await res.json()) as { id: string };
    await stack.allCompleted([id], 60_000);
    const mail = await stack.smtp.waitFor((m) => m.to.includes(email), 30_000);
    const link =
      /^Download: (\S+)$/m.exec(mail.mail.text ?? '')?.[1] ?? assert.fail('no download link');
    assert.ok(link.startsWith(`${stack.base}/files/reports/`), `a download link: ${link}`);
    const download = await fetch(link);
    assert.equal(download.status, 200);
    assert.equal(download.headers.get('content-type'), 'application/zip');
    const zip = Buffer.from(await download.arrayBuffer());
    assert.equal(zip.subarray(0, 4).toString('latin1'), 'PK\x03\x04', 'a zip');
    assert.equal(Number(download.headers.get('content-length')), zip.length);
    assert.deepEqual(await filesUnder(dirs.web), []);
    assert.deepEqual(await filesUnder(dirs.worker), []);
    // The mailed link expires with the file (FILE_MAX_AGE_HOURS, 24 h), and only our signature
    // guards it: the same key without it is refused.
    const unsigned = new URL(link);
    unsigned.search = '';
    assert.equal((await fetch(unsigned)).status, 403);
  });
});
