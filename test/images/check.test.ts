import assert from 'node:assert/strict';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ImageCheck, type ImageInfo } from '../../src/images/check.js';
import { ImageError, type ImageProblem } from '../../src/images/formats.js';
import { makeImage, pixelBombPng, truncate, type Format } from '../harness/images.js';

const MAX_PIXELS = 40_000_000;

/** Streams `file` through a check in chunks of `chunkBytes`; counts the bytes it let through. */
async function check(file: Buffer, chunkBytes = 64 * 1024, maxPixels = MAX_PIXELS) {
  const chunks: Buffer[] = [];
  for (let at = 0; at < file.length; at += chunkBytes) {
    chunks.push(file.subarray(at, at + chunkBytes));
  }
  const imageCheck = new ImageCheck(maxPixels);
  let passed = 0;
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      passed += chunk.length;
      done();
    },
  });
  await pipeline(Readable.from(chunks), imageCheck, sink);
  return { info: imageCheck.info, passed };
}

async function refused(file: Buffer, problem: ImageProblem, chunkBytes?: number) {
  await assert.rejects(check(file, chunkBytes), (error: unknown) => {
    assert.ok(error instanceof ImageError, String(error));
    assert.equal(error.problem, problem, error.message);
    return true;
  });
}

const FORMATS: Format[] = ['jpeg', 'png', 'webp', 'gif', 'avif'];

describe('ImageCheck (upload structure check)', () => {
  for (const format of FORMATS) {
    it(`when a complete ${format} streams through, then it passes whole, with its size`, async () => {
      const file = await makeImage(format, 300, 200);
      const { info, passed } = await check(file, 1000);
      assert.deepEqual(info, {
        format,
        width: 300,
        height: 200,
        bytes: file.length,
      } satisfies ImageInfo);
      assert.equal(passed, file.length);
    });

    it(`when a ${format} is cut short, then it is refused as truncated`, async () => {
      await refused(truncate(await makeImage(format, 300, 200)), 'truncated');
    });
  }

  it('when a file arrives one byte at a time, then every boundary is handled', async () => {
    for (const format of FORMATS) {
      const file = await makeImage(format, 40, 30);
      const { info } = await check(file, 1);
      assert.equal(info?.format, format);
      assert.deepEqual([info.width, info.height], [40, 30]);
    }
  });

  it('when a JPEG is progressive, has EXIF or is rotated by EXIF, then its stored size is read', async () => {
    const sharp = (await import('sharp')).default;
    const base = await makeImage('jpeg', 320, 240, { exif: true, orientation: 6 });
    const progressive = await sharp(base).jpeg({ progressive: true }).withMetadata().toBuffer();
    for (const file of [base, progressive]) {
      const { info } = await check(file, 777);
      assert.deepEqual([info?.width, info?.height], [320, 240]);
    }
    await refused(truncate(progressive, 0.9), 'truncated');
  });

  it('when a lossless WebP or an animated GIF comes, then its canvas size is read', async () => {
    const sharp = (await import('sharp')).default;
    const lossless = await sharp(await makeImage('png', 50, 70))
      .webp({ lossless: true })
      .toBuffer();
    assert.deepEqual((await check(lossless)).info, {
      format: 'webp',
      width: 50,
      height: 70,
      bytes: lossless.length,
    });
    const frame = await makeImage('png', 20, 10);
    const animated = await sharp([frame, frame, frame], { join: { animated: true } })
      .gif()
      .toBuffer();
    assert.deepEqual(
      [(await check(animated)).info?.width, (await check(animated)).info?.height],
      [20, 10],
    );
  });

  it('when data trails a complete JPEG (a motion photo), then it is accepted', async () => {
    const file = Buffer.concat([await makeImage('jpeg', 64, 64), Buffer.alloc(5000, 7)]);
    assert.equal((await check(file)).info?.format, 'jpeg');
  });

  it('when the content is not an accepted image, then it is unsupported, whatever it is called', async () => {
    const sharp = (await import('sharp')).default;
    const svg = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>');
    const tiff = await sharp(await makeImage('png', 10, 10))
      .tiff()
      .toBuffer();
    const heic = Buffer.concat([
      Buffer.from([0, 0, 0, 24]),
      Buffer.from('ftypheic\0\0\0\0mif1heic'),
    ]);
    for (const file of [
      Buffer.from('hello, I am a PNG. honest.'),
      svg,
      tiff,
      Buffer.from('%PDF-1.7\n'),
      heic,
      Buffer.from('GIF'),
    ]) {
      await refused(file, 'unsupported');
    }
  });

  it('when the file is empty, then it is refused as empty', async () => {
    await refused(Buffer.alloc(0), 'empty');
  });

  it('when a tiny PNG declares a huge canvas, then it is refused from its header, before the rest passes', async () => {
    const bomb = Buffer.concat([await pixelBombPng(100_000, 100_000), Buffer.alloc(1 << 20)]);
    await refused(bomb, 'too-many-pixels');
    // The check fails on the first chunk: nothing of the file reaches storage.
    const chunks = [bomb.subarray(0, 100), bomb.subarray(100)];
    const imageCheck = new ImageCheck(MAX_PIXELS);
    let passed = 0;
    await assert.rejects(
      pipeline(
        Readable.from(chunks),
        imageCheck,
        new Writable({
          write(c: Buffer, _e, done) {
            passed += c.length;
            done();
          },
        }),
      ),
      /100000×100000 \(10000 megapixels\); the limit is 40/,
    );
    assert.equal(passed, 0);
  });

  it('when an image is just within the pixel limit, then it passes; one row more, then it does not', async () => {
    // Structurally whole (the pixel data is short, which only decoding can tell: the worker's job).
    const { info } = await check(await pixelBombPng(8000, 5000));
    assert.deepEqual([info?.width, info?.height], [8000, 5000]);
    await refused(await pixelBombPng(8000, 5001), 'too-many-pixels');
  });

  it('when structure lies (a chunk past the end, a bad marker), then it is malformed or truncated', async () => {
    const png = Buffer.from(await makeImage('png', 16, 16));
    png.writeUInt32BE(0xffffffff, 33); // the chunk after IHDR claims 4 GB
    await refused(png, 'malformed');
    const jpeg = Buffer.from(await makeImage('jpeg', 16, 16));
    jpeg[4 + jpeg.readUInt16BE(4)] = 0x12; // where the segment after APP0 must start with 0xFF
    await refused(jpeg, 'malformed');
    const zero = await pixelBombPng(0, 10);
    await refused(zero, 'malformed');
  });
});
