import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readdir } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { join } from 'node:path';
import sharp from 'sharp';
import request from 'supertest';
import { createTestApp, eventually, type TestApp } from '../harness/app.js';
import { makeImage, pixelBombPng, truncate } from '../harness/images.js';
import { multipart, MULTIPART_TYPE } from '../harness/multipart.js';

interface Thumbnail {
  width: number;
  height: number;
  bytes: number;
  url: string;
}

/** Every file in the uploads directory, temp files included: what a refusal must not leave. */
async function storedUploads(t: TestApp): Promise<string[]> {
  return readdir(join(t.config.STORAGE_DIR, 'uploads')).catch(() => []);
}

async function completed(t: TestApp, id: string) {
  return eventually(
    async () => {
      const res = await request(t.app).get(`/jobs/${id}`).expect(200);
      const body = res.body as { state: string; result?: { thumbnails: Thumbnail[] } };
      if (body.state === 'failed') assert.fail(`job failed: ${JSON.stringify(body)}`);
      return body.state === 'completed' ? body : undefined;
    },
    20_000,
    'state completed',
  );
}

// The same contract in both modes: where the resize runs must not change what a client sees.
for (const mode of ['queue', 'inline'] as const) {
  describe(`POST /thumbnails (${mode} mode)`, () => {
    let t: TestApp;
    before(async () => {
      t = await createTestApp({ OFFLOAD_MODE: mode });
      if (mode === 'queue') t.startWorkers();
    });
    after(() => t.close());

    it('when a photo is uploaded, then 202 comes with Location, and the job makes upright WebP thumbnails that download through signed links', async () => {
      const photo = await makeImage('jpeg', 1600, 1200, { orientation: 6, exif: true });
      const res = await request(t.app)
        .post('/thumbnails')
        .attach('image', photo, { filename: 'IMG_0001.JPG', contentType: 'image/jpeg' })
        .expect(202);
      const body = res.body as { id: string; name: string; image: unknown };
      assert.equal(res.headers.location, `/jobs/${body.id}`);
      assert.equal(body.name, 'make-thumbnail');
      assert.deepEqual(body.image, {
        format: 'jpeg',
        width: 1600,
        height: 1200,
        bytes: photo.length,
      });
      assert.match(res.headers['server-timing'] ?? '', /^upload;dur=/);

      const status = await completed(t, body.id);
      const thumbnails = status.result?.thumbnails ?? [];
      // Orientation 6 turns a 1600×1200 landscape into a 1200×1600 portrait.
      assert.deepEqual(
        thumbnails.map(({ width, height }) => [width, height]),
        [
          [128, 171],
          [512, 683],
          [1024, 1365],
        ],
      );
      for (const thumbnail of thumbnails) {
        const download = await request(t.app)
          .get(thumbnail.url)
          .responseType('blob')
          .expect(200)
          .expect('Content-Type', 'image/webp');
        const file = download.body as Buffer;
        assert.equal(file.length, thumbnail.bytes);
        const meta = await sharp(file).metadata();
        assert.deepEqual(
          [meta.format, meta.width, meta.height],
          ['webp', thumbnail.width, thumbnail.height],
        );
        assert.equal(meta.exif, undefined, 'EXIF (camera owner, location) is stripped');
        assert.equal(meta.orientation, undefined);
      }
    });

    it('when the content is an image but the name and type say otherwise, then the content decides', async () => {
      const png = await makeImage('png', 64, 48);
      const res = await request(t.app)
        .post('/thumbnails')
        .attach('image', png, { filename: 'notes.txt', contentType: 'text/plain' })
        .expect(202);
      assert.equal((res.body as { image: { format: string } }).image.format, 'png');
      await completed(t, (res.body as { id: string }).id);
    });
  });
}

describe('POST /thumbnails refuses bad uploads, enqueuing and storing nothing', () => {
  let t: TestApp;
  const MAX_BYTES = 256 * 1024;
  before(async () => {
    t = await createTestApp({ UPLOAD_MAX_BYTES: String(MAX_BYTES) });
  });
  after(() => t.close());

  async function refused(
    send: (req: request.Test) => request.Test,
    status: number,
    error: RegExp,
  ): Promise<void> {
    const res = await send(request(t.app).post('/thumbnails'));
    assert.equal(res.status, status, JSON.stringify(res.body));
    assert.match((res.body as { error: string }).error, error);
    assert.equal(await t.countJobs('media'), 0, 'nothing enqueued');
    assert.deepEqual(await storedUploads(t), [], 'nothing stored, not even a temp file');
  }

  it('when the content is not an image, whatever its name and type claim, then 415', async () => {
    for (const [data, filename, type] of [
      ['just some text', 'photo.png', 'image/png'],
      ['<svg xmlns="http://www.w3.org/2000/svg"/>', 'icon.jpg', 'image/jpeg'],
      ['%PDF-1.7 ...', 'scan.webp', 'image/webp'],
    ] as const) {
      await refused(
        (req) => req.attach('image', Buffer.from(data), { filename, contentType: type }),
        415,
        /not an accepted image: by its content it is none of JPEG, PNG, GIF, WebP, AVIF/,
      );
    }
    const tiff = await sharp(await makeImage('png', 32, 32))
      .tiff()
      .toBuffer();
    await refused((req) => req.attach('image', tiff, 'scan.tiff'), 415, /not an accepted image/);
  });

  it('when the file is empty, then 400', async () => {
    await refused((req) => req.attach('image', Buffer.alloc(0), 'empty.jpg'), 400, /file is empty/);
  });

  it('when the file is over the size limit, then 413', async () => {
    const big = await makeImage('png', 400, 400); // noise: far over 256 kB
    assert.ok(big.length > MAX_BYTES);
    await refused(
      (req) => req.attach('image', big, 'big.png'),
      413,
      new RegExp(`larger than the limit of ${MAX_BYTES} bytes`),
    );
  });

  it('when a tiny PNG declares a huge canvas (a pixel bomb), then 413 naming the pixels', async () => {
    const bomb = await pixelBombPng(50_000, 50_000);
    assert.ok(bomb.length < 1000);
    await refused(
      (req) => req.attach('image', bomb, 'bomb.png'),
      413,
      /50000×50000 \(2500 megapixels\); the limit is 40 megapixels/,
    );
  });

  it('when a JPEG is truncated, then 422', async () => {
    const cut = truncate(await makeImage('jpeg', 200, 150));
    await refused((req) => req.attach('image', cut, 'cut.jpg'), 422, /JPEG is truncated/);
  });

  it('when the file name is a path, holds NUL or is very long, then 400', async () => {
    const jpeg = await makeImage('jpeg', 32, 32);
    // busboy itself refuses raw control characters in a part's headers; a percent-encoded
    // NUL (RFC 5987) gets through busboy decoded, and our own check refuses it.
    const plain = /file name must be a plain name/;
    for (const [params, error] of [
      ['; filename="../../x.jpg"', plain],
      ['; filename="..\\..\\x.jpg"', plain],
      ['; filename="/etc/passwd"', plain],
      ["; filename*=UTF-8''a%00b.jpg", plain],
      ["; filename*=UTF-8''..%2F..%2Fx.jpg", plain],
      ['; filename="a\0b.jpg"', /malformed multipart body: Malformed part header/],
      [`; filename="${'x'.repeat(300)}"`, /file name is longer than 255 bytes/],
    ] as const) {
      await refused(
        (req) =>
          req
            .set('Content-Type', MULTIPART_TYPE)
            .send(
              multipart([{ name: 'image', rawParams: params, type: 'image/jpeg', data: jpeg }]),
            ),
        400,
        error,
      );
    }
  });

  it('when the form is wrong (no file, another field, two files, not multipart, cut off), then 4xx naming it', async () => {
    const jpeg = await makeImage('jpeg', 32, 32);
    const send = (body: Buffer) => (req: request.Test) =>
      req.set('Content-Type', MULTIPART_TYPE).send(body);
    await refused(send(multipart([])), 400, /no file in the field "image"/);
    await refused(
      send(multipart([{ name: 'file', filename: 'a.jpg', data: jpeg }])),
      400,
      /unexpected file field "file"/,
    );
    await refused(send(multipart([{ name: 'image', data: 'text' }])), 400, /no plain fields/);
    await refused(
      send(
        multipart([
          { name: 'image', filename: 'a.jpg', data: jpeg },
          { name: 'image', filename: 'b.jpg', data: jpeg },
        ]),
      ),
      400,
      /one file only/,
    );
    await refused(
      send(multipart([{ name: 'image', filename: 'a.jpg', data: jpeg }], { close: false })),
      400,
      /malformed multipart body/,
    );
    await refused((req) => req.send({ image: 'a.jpg' }), 415, /send multipart\/form-data/);
    await refused(
      (req) => req.set('Content-Type', 'multipart/form-data').send('x'),
      400,
      /multipart/,
    );
  });
});

describe('POST /thumbnails stops reading a refused upload', () => {
  const MAX_BYTES = 1024 * 1024;
  const DISCARD_MAX_BYTES = 2 * 1024 * 1024;
  let t: TestApp;
  let server: http.Server;
  let port: number;
  let sockets: Socket[];

  before(async () => {
    t = await createTestApp({
      UPLOAD_MAX_BYTES: String(MAX_BYTES),
      DISCARD_MAX_BYTES: String(DISCARD_MAX_BYTES),
    });
    server = t.app.listen(0, '127.0.0.1');
    await once(server, 'listening');
    port = (server.address() as AddressInfo).port;
    sockets = [];
    server.on('connection', (socket) => sockets.push(socket));
  });
  after(async () => {
    server.closeAllConnections();
    server.close();
    await t.close();
  });

  /** A raw POST /thumbnails: the test decides what the body holds and when it stops. */
  const upload = (headers: http.OutgoingHttpHeaders) =>
    http.request({
      port,
      host: '127.0.0.1',
      method: 'POST',
      path: '/thumbnails',
      headers: { 'Content-Type': MULTIPART_TYPE, ...headers },
    });

  /**
   * Streams a multipart upload whose file is `head` followed by zeros, up to `offered` bytes,
   * until the server answers. Zeros keep a JPEG's scan well formed, so only the size limit
   * can stop it.
   */
  async function stream(head: Buffer, offered: number, headers: http.OutgoingHttpHeaders) {
    const req = upload(headers);
    const answered = new Promise<{ status: number; body: string }>((resolve, reject) => {
      req.on('response', (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
    });
    const state = { answered: false };
    void answered.finally(() => (state.answered = true)).catch(() => undefined);
    const opening = multipart([{ name: 'image', filename: 'a.jpg', data: head }], { close: false });
    req.write(opening.subarray(0, opening.length - 2)); // without the part's closing CRLF
    let sent = opening.length;
    const zeros = Buffer.alloc(64 * 1024);
    while (!state.answered && sent < offered) {
      sent += zeros.length;
      if (!req.write(zeros))
        await Promise.race([once(req, 'drain'), answered.catch(() => undefined)]);
    }
    const answer = await answered;
    req.destroy();
    return { ...answer, sent };
  }

  /** A real JPEG up to the start of its scan data. */
  async function jpegHead(): Promise<Buffer> {
    const jpeg = await makeImage('jpeg', 64, 64);
    const sos = jpeg.indexOf(Buffer.from([0xff, 0xda]));
    return jpeg.subarray(0, sos + 2 + jpeg.readUInt16BE(sos + 2));
  }

  it('when an upload without Content-Length passes the limit, then 413 comes at once, the connection closes, and at most DISCARD_MAX_BYTES more is read', async () => {
    const offered = 64 * 1024 * 1024;
    const { status, body, sent } = await stream(await jpegHead(), offered, {
      'Transfer-Encoding': 'chunked',
    });
    assert.equal(status, 413, body);
    assert.match(body, /larger than the limit of 1048576 bytes/);
    assert.ok(sent < offered, 'the client learnt of the refusal while still sending');
    await eventually(
      () => (sockets.at(-1)?.destroyed ? true : undefined),
      5_000,
      'connection closed',
    );
    // Counted once the connection is closed, so however slow the machine, nothing is read
    // after: the limit, the multipart framing, the discard bound after the 413, and what the
    // reads that crossed each of them carried (64 kB each; 1 MB is ample), whatever the client
    // managed to send meanwhile. Far from the 64 MB offered.
    const read = sockets.at(-1)?.bytesRead ?? Infinity;
    const bound = MAX_BYTES + 64 * 1024 + DISCARD_MAX_BYTES + 1024 * 1024;
    assert.ok(read <= bound, `the server read ${read} bytes; the bound is ${bound}`);
    assert.deepEqual(await storedUploads(t), []);
    assert.equal(await t.countJobs('media'), 0);
  });

  it('when Content-Length already says too much, then 413 comes before any of the body is read', async () => {
    const req = upload({ 'Content-Length': String(50 * MAX_BYTES) });
    req.on('error', () => undefined); // the server closes while we never finish the body
    req.flushHeaders();
    const [res] = (await once(req, 'response')) as [http.IncomingMessage];
    assert.equal(res.statusCode, 413);
    assert.equal(res.headers.connection, 'close');
    res.resume();
    req.destroy();
  });

  it('when the client disconnects mid-upload, then nothing is left in storage', async () => {
    const req = upload({ 'Transfer-Encoding': 'chunked' });
    req.on('error', () => undefined);
    const opening = multipart([{ name: 'image', filename: 'a.jpg', data: await jpegHead() }], {
      close: false,
    });
    req.write(opening.subarray(0, opening.length - 2));
    req.write(Buffer.alloc(100_000));
    // Wait until the upload has reached storage (a temp file exists), then hang up.
    await eventually(
      async () => ((await storedUploads(t)).length > 0 ? true : undefined),
      5_000,
      'upload started',
    );
    req.destroy();
    await eventually(
      async () => ((await storedUploads(t)).length === 0 ? true : undefined),
      5_000,
      'temp file removed',
    );
    assert.equal(await t.countJobs('media'), 0);
  });
});

describe('POST /thumbnails when Redis is down', () => {
  it('then it answers 503 and keeps no upload', async () => {
    const { freePort } = await import('../harness/ports.js');
    const t = await createTestApp({ REDIS_URL: `redis://127.0.0.1:${await freePort()}` });
    try {
      const res = await request(t.app)
        .post('/thumbnails')
        .attach('image', await makeImage('jpeg', 32, 32), 'a.jpg')
        .expect(503);
      assert.match((res.body as { error: string }).error, /queue is unavailable/);
      assert.deepEqual(await storedUploads(t), []);
    } finally {
      await t.close();
    }
  });
});
