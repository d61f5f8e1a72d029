import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { PassThrough, Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { loadConfig } from '../src/config.js';
import { createStorage } from '../src/deps.js';
import {
  createS3Storage,
  InvalidKeyError,
  NotFoundError,
  type Storage,
} from '../src/storage/index.js';
import { startS3, type TestS3 } from './harness/s3.js';

async function listAll(storage: Storage, prefix: string) {
  const keys: string[] = [];
  for await (const file of storage.list(prefix)) keys.push(file.key);
  return keys.sort();
}

describe('S3 storage (against s3rver, a real S3-API server on loopback)', function () {
  this.timeout(60_000);
  let s3: TestS3;
  let storage: Storage;
  let server: TestS3 | undefined;

  before(async () => {
    s3 = server = await startS3();
    // Built the way the processes build it: from configuration keys.
    storage = createStorage(loadConfig(s3.env));
  });
  after(() => server?.close());

  it('when a stream is put, then get, stat and delete see exactly those bytes, and then nothing', async () => {
    const bytes = randomBytes(300_000);
    const stored = await storage.put(
      'thumbs/ab/c_512.webp',
      Readable.from([bytes.subarray(0, 100_000), bytes.subarray(100_000)]),
    );
    assert.deepEqual(stored, { key: 'thumbs/ab/c_512.webp', bytes: 300_000 });
    assert.deepEqual(await buffer(await storage.get('thumbs/ab/c_512.webp')), bytes);

    const info = await storage.stat('thumbs/ab/c_512.webp');
    assert.equal(info?.bytes, 300_000);
    assert.equal(info.contentType, 'image/webp');
    assert.ok(Math.abs(info.modifiedAt.getTime() - Date.now()) < 60_000, 'modifiedAt is now');

    await storage.delete('thumbs/ab/c_512.webp');
    assert.equal(await storage.stat('thumbs/ab/c_512.webp'), null);
    await assert.rejects(storage.get('thumbs/ab/c_512.webp'), NotFoundError);
    await storage.delete('thumbs/ab/c_512.webp'); // a second delete (a re-run job) is fine
  });

  it('when a stream of unknown length is over one part (5 MiB), then it goes up in parts and reads back whole', async () => {
    const bytes = randomBytes(12 * 1024 * 1024 + 17);
    const chunks = Array.from({ length: Math.ceil(bytes.length / 65_536) }, (_, i) =>
      bytes.subarray(i * 65_536, (i + 1) * 65_536),
    );
    const stored = await storage.put('reports/big.zip', Readable.from(chunks));
    assert.equal(stored.bytes, bytes.length);
    assert.equal((await storage.stat('reports/big.zip'))?.bytes, bytes.length);
    assert.ok((await buffer(await storage.get('reports/big.zip'))).equals(bytes));
  });

  it('when a key is missing or is only a prefix, then get throws NotFoundError and stat is null', async () => {
    await storage.put('reports/r.zip', Readable.from(['zip']));
    for (const key of ['nothing.png', 'reports', 'reports/r.zip/inner']) {
      await assert.rejects(storage.get(key), NotFoundError, key);
      assert.equal(await storage.stat(key), null, key);
    }
  });

  it('when a put fails mid-stream, then the key still holds the old file', async () => {
    const first = Buffer.alloc(100_000, 'a');
    await storage.put('r.zip', Readable.from([first]));
    const failing = new PassThrough();
    const failed = storage.put('r.zip', failing);
    failing.write(Buffer.alloc(50_000, 'b'));
    failing.destroy(new Error('upload cut off'));
    await assert.rejects(failed, /upload cut off/);
    assert.deepEqual(await buffer(await storage.get('r.zip')), first);
  });

  it('when a key breaks the key rules, then every method refuses it', async () => {
    for (const key of ['../x', '/abs', 'a/../b', 'a\\b', '', 'a//b', '.hidden', 'Upper.png']) {
      await assert.rejects(storage.put(key, Readable.from(['evil'])), InvalidKeyError, key);
      await assert.rejects(storage.get(key), InvalidKeyError, key);
      await assert.rejects(storage.stat(key), InvalidKeyError, key);
      await assert.rejects(storage.delete(key), InvalidKeyError, key);
    }
    assert.throws(() => storage.list('../'), InvalidKeyError);
  });

  it('when files are listed by prefix, then exactly our keys starting with it come back, with their times', async () => {
    const fresh = createStorage(loadConfig(s3.env));
    for (const key of ['list/thumbs/a1/x.webp', 'list/thumbs/a2/y.webp', 'list/thumbs/b1.webp']) {
      await fresh.put(key, Readable.from([key]));
    }
    await fresh.put('list/reports/r.zip', Readable.from(['r']));
    // An object another tool wrote, under a name that is no key of ours: never listed.
    const client = new S3Client({
      region: 'us-east-1',
      endpoint: s3.env.S3_ENDPOINT,
      forcePathStyle: true,
      credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    });
    await client.send(
      new PutObjectCommand({ Bucket: s3.bucket, Key: 'list/thumbs/Stray File.TXT', Body: 'x' }),
    );
    client.destroy();

    assert.deepEqual(await listAll(fresh, 'list/'), [
      'list/reports/r.zip',
      'list/thumbs/a1/x.webp',
      'list/thumbs/a2/y.webp',
      'list/thumbs/b1.webp',
    ]);
    assert.deepEqual(await listAll(fresh, 'list/thumbs/a'), [
      'list/thumbs/a1/x.webp',
      'list/thumbs/a2/y.webp',
    ]);
    assert.deepEqual(await listAll(fresh, 'nothing/'), []);
    for await (const file of fresh.list('list/reports/')) {
      assert.ok(file.modifiedAt instanceof Date && Date.now() - file.modifiedAt.getTime() < 60_000);
    }
  });

  it('when the credentials are wrong, then the server refuses the signature and put fails', async () => {
    const forged = createS3Storage({
      bucket: s3.bucket,
      region: 'us-east-1',
      endpoint: s3.env.S3_ENDPOINT,
      forcePathStyle: true,
      credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'not-the-secret' },
    });
    await assert.rejects(forged.put('x.txt', Readable.from(['x'])), /signature/i);
    assert.equal(await storage.stat('x.txt'), null);
  });
});

describe('loadConfig: S3 keys', () => {
  it('when S3_BUCKET is unset, then storage is the local directory, and S3-only keys are refused', () => {
    assert.equal(loadConfig({}).S3_BUCKET, undefined);
    assert.throws(
      () => loadConfig({ S3_ENDPOINT: 'http://127.0.0.1:9000' }),
      /S3_ENDPOINT: only used with S3_BUCKET/,
    );
  });

  it('when S3 keys are given, then they parse, and a half credential pair or a bad bucket is named', () => {
    const config = loadConfig({
      S3_BUCKET: 'my-bucket',
      S3_ENDPOINT: 'https://s3.example.com',
      S3_FORCE_PATH_STYLE: 'true',
    });
    assert.equal(config.S3_BUCKET, 'my-bucket');
    assert.equal(config.S3_REGION, 'us-east-1');
    assert.equal(config.S3_FORCE_PATH_STYLE, true);
    assert.throws(
      () => loadConfig({ S3_BUCKET: 'b-1', AWS_ACCESS_KEY_ID: 'AKIA' }),
      /AWS_SECRET_ACCESS_KEY: give it together/,
    );
    assert.throws(() => loadConfig({ S3_BUCKET: 'My_Bucket' }), /S3_BUCKET/);
  });
});
