import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import express from 'express';
import request from 'supertest';
import { filesRouter } from '../../routes/files.js';
import {
  createLocalStorage,
  createUrlSigner,
  type Storage,
  type UrlSigner,
} from '../../src/storage/index.js';
import { createTestApp, type TestApp } from '../harness/app.js';

const SECRET = 'route-test-signing-secret-0123456789';
const OUTSIDE = 'root:x:0:0:this file is outside STORAGE_DIR';

/**
 * Signs any text, even one the signer would refuse as a key, in the documented format: so a
 * traversal attempt below carries a *valid* signature, and only the key rules can stop it.
 */
function rawLink(key: string, path: string, exp = Math.floor(Date.now() / 1000) + 3600) {
  const sig = createHmac('sha256', SECRET).update(`${key}\n${exp}`).digest('base64url');
  return `/files/${path}?exp=${exp}&sig=${sig}`;
}

/** Replaces the query parameter `name` of a link. */
function withParam(url: string, name: string, value: string) {
  const parsed = new URL(url, 'http://x');
  parsed.searchParams.set(name, value);
  return `${parsed.pathname}${parsed.search}`;
}

describe('GET /files/*key', () => {
  let parent: string;
  let t: TestApp;
  let signer: UrlSigner;

  before(async () => {
    parent = await mkdtemp(join(tmpdir(), 'offload-files-'));
    await writeFile(join(parent, 'secret.txt'), OUTSIDE);
    t = await createTestApp({ STORAGE_DIR: join(parent, 'storage'), SIGNING_SECRET: SECRET });
    signer = createUrlSigner({ secret: SECRET });
  });
  after(async () => {
    await t.close();
  });

  it('when a signed link is followed, then it downloads the exact bytes with type, length, private caching and nosniff', async () => {
    const bytes = randomBytes(200_000);
    await t.deps.storage.put('thumbs/t1_512.png', Readable.from([bytes]));
    const res = await request(t.app)
      .get(signer.signUrl('thumbs/t1_512.png', { expiresInMs: 3_600_000 }))
      .responseType('blob')
      .expect(200);
    assert.deepEqual(res.body, bytes);
    assert.equal(res.headers['content-type'], 'image/png');
    assert.equal(res.headers['content-length'], '200000');
    const maxAge = Number(/^private, max-age=(\d+)$/.exec(res.headers['cache-control'] ?? '')?.[1]);
    assert.ok(maxAge > 3590 && maxAge <= 3600, `max-age is the time left: ${maxAge}`);
    assert.equal(res.headers['x-content-type-options'], 'nosniff');
    assert.equal(res.headers['content-disposition'], undefined, 'an image may show inline');
  });

  it('when the file is not a raster image, then it is sent as an attachment, never as a page', async () => {
    for (const [key, type] of [
      ['reports/r1.zip', 'application/zip'],
      ['reports/page.html', 'application/octet-stream'],
      ['reports/logo.svg', 'application/octet-stream'],
    ] as const) {
      await t.deps.storage.put(key, Readable.from(['<script>alert(1)</script>']));
      const res = await request(t.app)
        .get(signer.signUrl(key, { expiresInMs: 60_000 }))
        .responseType('blob')
        .expect(200);
      assert.equal(res.headers['content-type'], type, key);
      const name = key.slice('reports/'.length);
      assert.equal(res.headers['content-disposition'], `attachment; filename="${name}"`, key);
      assert.equal(res.headers['x-content-type-options'], 'nosniff');
    }
  });

  it('when the link has expired, then it answers 403 "link expired"', async () => {
    await t.deps.storage.put('old.png', Readable.from(['old']));
    const url = signer.signUrl('old.png', {
      expiresInMs: 3_600_000,
      now: Date.now() - 2 * 3_600_000,
    });
    const res = await request(t.app).get(url).expect(403).expect('Content-Type', /json/);
    assert.deepEqual(res.body, { error: 'link expired' });
    assert.equal(res.headers['cache-control'], 'no-store');
  });

  it('when the signature is tampered with, made for another key, or the expiry is changed, then it answers 403 "bad signature"', async () => {
    await t.deps.storage.put('mine.png', Readable.from(['mine']));
    await t.deps.storage.put('theirs.png', Readable.from(['theirs']));
    const mine = signer.signUrl('mine.png', { expiresInMs: 60_000 });
    const theirs = signer.signUrl('theirs.png', { expiresInMs: 60_000 });
    const sig = new URL(mine, 'http://x').searchParams.get('sig') ?? '';
    const exp = Number(new URL(mine, 'http://x').searchParams.get('exp'));
    await request(t.app).get(mine).expect(200); // the unaltered link works

    const altered = [
      withParam(mine, 'sig', (sig.startsWith('A') ? 'B' : 'A') + sig.slice(1)),
      withParam(theirs, 'sig', sig), // mine.png's signature on theirs.png
      withParam(mine, 'exp', String(exp + 86_400)),
      withParam(mine, 'sig', ''),
      '/files/mine.png',
      `/files/mine.png?exp=${exp}`,
      `${mine}&exp=${exp}`, // a repeated parameter
    ];
    for (const url of altered) {
      const res = await request(t.app).get(url).expect(403).expect('Content-Type', /json/);
      assert.deepEqual(res.body, { error: 'bad signature' }, url);
    }
  });

  it('when the signature is valid but the file is gone, then it answers a JSON 404', async () => {
    const never = signer.signUrl('never-written.png', { expiresInMs: 60_000 });
    let res = await request(t.app).get(never).expect(404).expect('Content-Type', /json/);
    assert.deepEqual(res.body, { error: 'no such file' });

    await t.deps.storage.put('cleaned.zip', Readable.from(['soon gone']));
    const cleaned = signer.signUrl('cleaned.zip', { expiresInMs: 60_000 });
    await request(t.app).get(cleaned).expect(200);
    await t.deps.storage.delete('cleaned.zip');
    res = await request(t.app).get(cleaned).expect(404).expect('Content-Type', /json/);
    assert.deepEqual(res.body, { error: 'no such file' });
  });

  it('when asked with HEAD, then it answers the headers without the body', async () => {
    await t.deps.storage.put('head.webp', Readable.from([Buffer.alloc(1234)]));
    const res = await request(t.app)
      .head(signer.signUrl('head.webp', { expiresInMs: 60_000 }))
      .expect(200);
    assert.equal(res.headers['content-length'], '1234');
    assert.equal(res.headers['content-type'], 'image/webp');
  });

  describe('path traversal', () => {
    /** Each path, with the key the server decodes from it (segments decoded, joined by /). */
    const attempts = (): [path: string, key: string][] => [
      ['..%2Fsecret.txt', '../secret.txt'],
      ['..%2F..%2Fetc%2Fpasswd', '../../etc/passwd'],
      ['%2e%2e/secret.txt', '../secret.txt'],
      ['a/%2e%2e/%2e%2e/secret.txt', 'a/../../secret.txt'],
      ['..%5Csecret.txt', '..\\secret.txt'],
      ['secret.txt%00.png', 'secret.txt\0.png'],
      [encodeURIComponent(join(parent, 'secret.txt')), join(parent, 'secret.txt')],
    ];

    it('when a path climbs out of STORAGE_DIR, even with a valid signature, then it answers 403 and reads nothing outside', async () => {
      // The control: a raw-signed link to a real key works, so the signatures below are genuine.
      await t.deps.storage.put('ok.txt', Readable.from(['ok']));
      await request(t.app).get(rawLink('ok.txt', 'ok.txt')).expect(200, 'ok');

      for (const [path, key] of attempts()) {
        const res = await request(t.app).get(rawLink(key, path)).responseType('blob');
        assert.ok([403, 404].includes(res.status), `${path}: ${res.status}`);
        assert.ok(!(res.body as Buffer).toString().includes('root:x'), `${path} leaked the file`);
      }
    });

    it('when a key breaks the key rules, then the storage is never asked', async () => {
      const touched: string[] = [];
      const local = createLocalStorage(join(parent, 'storage'));
      const recording: Storage = {
        ...local,
        stat: (key) => (touched.push(key), local.stat(key)),
        get: (key) => (touched.push(key), local.get(key)),
      };
      const app = express().use(filesRouter({ storage: recording, signer }));

      await request(app).get(rawLink('ok.txt', 'ok.txt')).expect(200);
      assert.deepEqual(touched, ['ok.txt', 'ok.txt'], 'a valid link reaches the storage');
      touched.length = 0;
      for (const [path, key] of attempts()) {
        await request(app).get(rawLink(key, path)).expect(403);
      }
      assert.deepEqual(touched, []);
    });
  });
});
