import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import {
  createLocalStorage,
  createUrlSigner,
  InvalidKeyError,
  NotFoundError,
  type Storage,
} from '../src/storage/index.js';
import { eventually } from './harness/app.js';

const SECRET = 'test-signing-secret-0123456789abcdef';

/** Every key rule violation the driver must refuse, and why it would be dangerous. */
const BAD_KEYS: [string, string][] = [
  ['../x', 'climbs out'],
  ['/abs', 'absolute'],
  ['a/../../b', 'climbs out midway'],
  ['a/./b', 'dot segment'],
  ['a\0b', 'NUL'],
  ['a\\..\\b', 'backslash'],
  ['k'.repeat(201), 'overlong'],
  ['', 'empty'],
  ['a//b', 'empty segment'],
  ['a/', 'trailing slash'],
  ['.hidden', 'dotfile (temp files are dotfiles)'],
  ['Upper.png', 'upper case'],
  ['a b.png', 'space'],
  ['é.png', 'non-ASCII'],
];

async function listAll(storage: Storage, prefix: string) {
  const keys: string[] = [];
  for await (const file of storage.list(prefix)) keys.push(file.key);
  return keys.sort();
}

describe('local storage', () => {
  let parent: string;
  let dir: string;
  let storage: Storage;

  beforeEach(async () => {
    parent = await mkdtemp(join(tmpdir(), 'offload-storage-'));
    dir = join(parent, 'storage');
    storage = createLocalStorage(dir);
  });

  it('when a stream is put, then get, stat and delete see exactly those bytes, and then nothing', async () => {
    const bytes = randomBytes(300_000);
    const stored = await storage.put(
      'thumbs/ab/c_512.webp',
      Readable.from([bytes.subarray(0, 100_000), bytes.subarray(100_000)]),
    );
    assert.deepEqual(stored, { key: 'thumbs/ab/c_512.webp', bytes: 300_000 });
    assert.deepEqual(await readFile(join(dir, 'thumbs', 'ab', 'c_512.webp')), bytes);
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

  it('when a key is missing or names a directory, then get throws NotFoundError and stat is null', async () => {
    await storage.put('reports/r.zip', Readable.from(['zip']));
    for (const key of ['nothing.png', 'reports', 'reports/r.zip/inner']) {
      await assert.rejects(storage.get(key), NotFoundError, key);
      assert.equal(await storage.stat(key), null, key);
    }
  });

  it('when a key is overwritten, then readers see the old file until the new one is whole, and a failed put changes nothing', async () => {
    const first = Buffer.alloc(100_000, 'a');
    await storage.put('r.zip', Readable.from([first]));

    const slow = new PassThrough();
    const putting = storage.put('r.zip', slow);
    slow.write(Buffer.alloc(50_000, 'b'));
    // The new bytes are on disk (in the temp file), yet the key still reads the old file whole.
    await eventually(async () => {
      const temp = (await readdir(dir)).find((name) => name.startsWith('.r.zip.'));
      const size = temp ? (await stat(join(dir, temp)).catch(() => null))?.size : 0;
      return size === 50_000 ? true : undefined;
    });
    assert.deepEqual(await buffer(await storage.get('r.zip')), first);
    slow.end(Buffer.alloc(50_000, 'b'));
    assert.equal((await putting).bytes, 100_000);
    const second = await buffer(await storage.get('r.zip'));
    assert.deepEqual(second, Buffer.alloc(100_000, 'b'));

    const failing = new PassThrough();
    const failed = storage.put('r.zip', failing);
    failing.write('partial');
    failing.destroy(new Error('upload cut off'));
    await assert.rejects(failed, /upload cut off/);
    assert.deepEqual(await buffer(await storage.get('r.zip')), second);
    assert.deepEqual(await readdir(dir), ['r.zip'], 'no temp file is left behind');
  });

  it('when a key breaks the key rules, then every method refuses it and nothing outside the directory is touched', async () => {
    await writeFile(join(parent, 'x'), 'outside');
    await writeFile(join(parent, 'b'), 'outside');
    for (const [key, why] of BAD_KEYS) {
      const message = `${JSON.stringify(key.slice(0, 20))}: ${why}`;
      await assert.rejects(storage.put(key, Readable.from(['evil'])), InvalidKeyError, message);
      await assert.rejects(storage.get(key), InvalidKeyError, message);
      await assert.rejects(storage.stat(key), InvalidKeyError, message);
      await assert.rejects(storage.delete(key), InvalidKeyError, message);
    }
    assert.equal(await readFile(join(parent, 'x'), 'utf8'), 'outside');
    assert.equal(await readFile(join(parent, 'b'), 'utf8'), 'outside');
    assert.deepEqual((await readdir(parent)).sort(), ['b', 'x'], 'not even a directory was made');
    await assert.rejects(listAll(storage, '../'), InvalidKeyError);
  });

  it('when a key is at the length limit or deeply nested, then it is stored', async () => {
    for (const key of ['k'.repeat(200), 'a/b/c/d/e_f-g.h.txt', '0']) {
      await storage.put(key, Readable.from([key]));
      assert.equal((await buffer(await storage.get(key))).toString(), key);
    }
  });

  it('when files are listed by prefix, then exactly the keys starting with it come back, with their times', async () => {
    for (const key of ['thumbs/a1/x.webp', 'thumbs/a2/y.webp', 'thumbs/b1.webp', 'reports/r.zip']) {
      await storage.put(key, Readable.from([key]));
    }
    await writeFile(join(dir, 'thumbs', '.stray.tmp'), 'not a key');

    assert.deepEqual(await listAll(storage, ''), [
      'reports/r.zip',
      'thumbs/a1/x.webp',
      'thumbs/a2/y.webp',
      'thumbs/b1.webp',
    ]);
    assert.deepEqual(await listAll(storage, 'thumbs/'), [
      'thumbs/a1/x.webp',
      'thumbs/a2/y.webp',
      'thumbs/b1.webp',
    ]);
    assert.deepEqual(await listAll(storage, 'thumbs/a'), ['thumbs/a1/x.webp', 'thumbs/a2/y.webp']);
    assert.deepEqual(await listAll(storage, 'thumbs/a1/'), ['thumbs/a1/x.webp']);
    assert.deepEqual(await listAll(storage, 'nothing/'), []);
    for await (const file of storage.list('reports/')) {
      assert.ok(file.modifiedAt instanceof Date && Date.now() - file.modifiedAt.getTime() < 60_000);
    }
    assert.deepEqual(await listAll(createLocalStorage(join(parent, 'never-made')), ''), []);
  });

  it('when a content type is asked of a key, then it follows the extension, and unknown or risky types are bytes', async () => {
    const types = await Promise.all(
      ['a.png', 'a.jpg', 'a.webp', 'a.zip', 'a.pdf', 'a.html', 'a.svg', 'noext'].map(
        async (key) => {
          await storage.put(key, Readable.from(['x']));
          return (await storage.stat(key))?.contentType;
        },
      ),
    );
    assert.deepEqual(types, [
      'image/png',
      'image/jpeg',
      'image/webp',
      'application/zip',
      'application/pdf',
      'application/octet-stream',
      'application/octet-stream',
      'application/octet-stream',
    ]);
  });
});

describe('signed links', () => {
  const signer = createUrlSigner({ secret: SECRET, publicUrl: 'https://app.example.com' });
  const now = Date.UTC(2030, 0, 1);

  function parts(url: string) {
    const parsed = new URL(url, 'http://x');
    return {
      key: parsed.pathname.slice('/files/'.length),
      exp: parsed.searchParams.get('exp') ?? '',
      sig: parsed.searchParams.get('sig') ?? '',
    };
  }

  it('when a link is signed, then it is /files/<key> with the expiry in seconds and a base64url HMAC, absolute on request', () => {
    const url = signer.signUrl('thumbs/a.webp', { expiresInMs: 60_500, now });
    assert.match(url, /^\/files\/thumbs\/a\.webp\?exp=\d+&sig=[\w-]{43}$/);
    assert.equal(Number(parts(url).exp), Math.ceil((now + 60_500) / 1000), 'rounded up');
    const absolute = signer.signUrl('thumbs/a.webp', { expiresInMs: 60_500, now, absolute: true });
    assert.equal(absolute, `https://app.example.com${url}`);
  });

  it('when a link is verified unchanged before its expiry, then it is accepted', () => {
    const { key, exp, sig } = parts(signer.signUrl('r/1.zip', { expiresInMs: 60_000, now }));
    const verdict = signer.verify(key, exp, sig, now + 59_000);
    assert.deepEqual(verdict, { ok: true, expiresAt: new Date(now + 60_000) });
  });

  it('when a link is verified at or after its expiry, then it is refused as expired', () => {
    const { key, exp, sig } = parts(signer.signUrl('r/1.zip', { expiresInMs: 60_000, now }));
    assert.deepEqual(signer.verify(key, exp, sig, now + 60_000), {
      ok: false,
      reason: 'link expired',
    });
  });

  it('when any part of a link is altered, then it is refused as a bad signature', () => {
    const { key, exp, sig } = parts(signer.signUrl('r/1.zip', { expiresInMs: 60_000, now }));
    const other = parts(signer.signUrl('r/2.zip', { expiresInMs: 60_000, now }));
    const flipped = (sig[0] === 'A' ? 'B' : 'A') + sig.slice(1);
    const cases: [string, unknown, unknown][] = [
      [key, exp, flipped],
      [key, exp, other.sig], // a signature for another key
      ['r/2.zip', exp, sig],
      [key, String(Number(exp) + 3600), sig], // a later expiry
      [key, `0${exp}`, sig], // the same moment, spelled differently
      [key, exp, sig.slice(0, -1)],
      [key, exp, `${sig}=`],
      [key, exp, Buffer.from(sig, 'base64url').toString('hex')],
      [key, exp, ''],
      [key, undefined, sig],
      [key, exp, undefined],
      [key, [exp, exp], sig],
      [key, exp, [sig]],
      [key, 'soon', sig],
    ];
    for (const [k, e, s] of cases) {
      assert.deepEqual(
        signer.verify(k, e, s, now),
        { ok: false, reason: 'bad signature' },
        JSON.stringify([k, e, s]),
      );
    }
    const stranger = createUrlSigner({ secret: `${SECRET}-other` });
    assert.deepEqual(stranger.verify(key, exp, sig, now), { ok: false, reason: 'bad signature' });
  });

  it('when a bad key, a non-positive lifetime or a short secret is given, then signing refuses', () => {
    for (const [key] of BAD_KEYS) {
      assert.throws(() => signer.signUrl(key, { expiresInMs: 1000 }), InvalidKeyError);
    }
    for (const expiresInMs of [0, -1, 1.5, Number.NaN]) {
      assert.throws(() => signer.signUrl('a.png', { expiresInMs }), RangeError);
    }
    assert.throws(() => createUrlSigner({ secret: 'short' }), /at least 32/);
    assert.throws(
      () =>
        createUrlSigner({ secret: SECRET }).signUrl('a.png', { expiresInMs: 1, absolute: true }),
      /public URL/,
    );
  });
});
