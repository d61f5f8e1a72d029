// Issue 18, item 3: a body refused for its size gets its 413 to every client, also those that
// send the whole body before they read: the server answers, reads off the rest within
// DISCARD_MAX_BYTES and DISCARD_MAX_MS, then closes. Nothing is stored or enqueued.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import type http from 'node:http';
import net, { type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createTestApp, eventually, type TestApp } from '../harness/app.js';
import { makeImage } from '../harness/images.js';
import { multipart, MULTIPART_TYPE } from '../harness/multipart.js';

const run = promisify(execFile);
const MAX_BYTES = 1024 * 1024;
const DISCARD_MAX_BYTES = 8 * 1024 * 1024;
const DISCARD_MAX_MS = 1_500;

describe('a body refused for its size', () => {
  let t: TestApp;
  let server: http.Server;
  let base: string;
  let port: number;
  let dir: string;
  const sockets: Socket[] = [];

  before(async () => {
    t = await createTestApp({
      UPLOAD_MAX_BYTES: String(MAX_BYTES),
      DISCARD_MAX_BYTES: String(DISCARD_MAX_BYTES),
      DISCARD_MAX_MS: String(DISCARD_MAX_MS),
    });
    server = t.app.listen(0, '127.0.0.1');
    await once(server, 'listening');
    port = (server.address() as AddressInfo).port;
    base = `http://127.0.0.1:${port}`;
    server.on('connection', (socket) => sockets.push(socket));
    dir = await mkdtemp(join(tmpdir(), 'offload-refused-'));
  });
  after(async () => {
    server.closeAllConnections();
    server.close();
    await t.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** Nothing stored and nothing enqueued, on any queue. */
  async function nothingKept() {
    const uploads = await readdir(join(t.config.STORAGE_DIR, 'uploads')).catch(() => []);
    const rosters = await readdir(join(t.config.STORAGE_DIR, 'reports')).catch(() => []);
    assert.deepEqual([...uploads, ...rosters], []);
    for (const queue of ['mail', 'media', 'reports', 'webhooks']) {
      assert.equal(await t.countJobs(queue), 0, `jobs in ${queue}`);
    }
  }

  /** A file of `bytes` that starts as a JPEG: only its size can refuse it. */
  async function bigJpeg(bytes: number): Promise<Buffer> {
    const head = await makeImage('jpeg', 64, 64);
    return Buffer.concat([head, Buffer.alloc(bytes - head.length)]);
  }

  /**
   * A raw socket that writes the whole request first and only then reads, as the clients in
   * the issue do; resolves with the response once it is all there (by its Content-Length).
   */
  async function writeThenRead(head: string, body: Buffer): Promise<string> {
    const socket = net.connect(port, '127.0.0.1');
    await once(socket, 'connect');
    socket.pause(); // read nothing until the whole body is written
    socket.write(head);
    if (!socket.write(body)) await once(socket, 'drain');
    let answer = '';
    socket.setEncoding('latin1');
    socket.resume();
    await new Promise<void>((resolve, reject) => {
      socket.on('data', (chunk: string) => {
        answer += chunk;
        const end = answer.indexOf('\r\n\r\n');
        const length = /\r\ncontent-length: (\d+)/i.exec(answer)?.[1];
        if (end > 0 && length && answer.length >= end + 4 + Number(length)) resolve();
      });
      socket.once('error', reject);
      socket.once('end', () => {
        reject(new Error(`closed before a whole response: ${JSON.stringify(answer)}`));
      });
    });
    socket.destroy();
    return answer;
  }

  const head = (path: string, type: string, length: number | 'chunked') =>
    `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: ${type}\r\n` +
    (length === 'chunked' ? 'Transfer-Encoding: chunked' : `Content-Length: ${length}`) +
    '\r\n\r\n';
  /** `body` as one chunk of a chunked body, then the last chunk. */
  const inChunks = (body: Buffer) =>
    Buffer.concat([
      Buffer.from(`${body.length.toString(16)}\r\n`),
      body,
      Buffer.from('\r\n0\r\n\r\n'),
    ]);
  const statusLine = (answer: string) => answer.split('\r\n')[0];
  const uploadOf = async (bytes: number) =>
    multipart([{ name: 'image', filename: 'a.jpg', data: await bigJpeg(bytes) }]);
  const csv = (rows: number) => `id,name\n${'S1,Ann\n'.repeat(rows)}`;

  it('when fetch posts a FormData over UPLOAD_MAX_BYTES (with Content-Length), then it reads the 413', async () => {
    const form = new FormData();
    form.append('image', new Blob([await bigJpeg(6 * MAX_BYTES)]), 'big.jpg');
    const res = await fetch(`${base}/thumbnails`, { method: 'POST', body: form });
    assert.equal(res.status, 413);
    const body = (await res.json()) as { error: string };
    assert.match(body.error, /larger than the limit of 1048576 bytes/);
    await nothingKept();
  });

  it('when curl -F posts a file over UPLOAD_MAX_BYTES, then curl prints 413', async () => {
    const file = join(dir, 'big.jpg');
    await writeFile(file, await bigJpeg(6 * MAX_BYTES));
    const { stdout } = await run('curl', [
      '-sS',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      '-F',
      `image=@${file}`,
      `${base}/thumbnails`,
    ]);
    assert.equal(stdout, '413');
    await nothingKept();
  });

  it('when a client writes a whole oversized upload before reading, with or without Content-Length, then it reads the 413', async () => {
    const body = await uploadOf(6 * MAX_BYTES);
    const declared = await writeThenRead(head('/thumbnails', MULTIPART_TYPE, body.length), body);
    assert.equal(statusLine(declared), 'HTTP/1.1 413 Payload Too Large');
    assert.match(declared, /larger than the limit of 1048576 bytes/);
    assert.match(declared, /\r\nConnection: close\r\n/i);
    const streamed = await writeThenRead(
      head('/thumbnails', MULTIPART_TYPE, 'chunked'),
      inChunks(body),
    );
    assert.equal(statusLine(streamed), 'HTTP/1.1 413 Payload Too Large');
    assert.match(streamed, /larger than the limit of 1048576 bytes/);
    await nothingKept();
  });

  it('when fetch or a write-first client posts a CSV roster over 1 MB, then each reads the 413', async () => {
    const form = new FormData();
    form.append('email', 'ann@example.com');
    form.append('roster', new Blob([csv(900_000)]), 'class.csv');
    const res = await fetch(`${base}/reports`, { method: 'POST', body: form });
    assert.equal(res.status, 413);
    const body = multipart([
      { name: 'email', data: 'ann@example.com' },
      { name: 'roster', filename: 'class.csv', data: csv(900_000) },
    ]);
    const answer = await writeThenRead(head('/reports', MULTIPART_TYPE, body.length), body);
    assert.equal(statusLine(answer), 'HTTP/1.1 413 Payload Too Large');
    assert.match(answer, /larger than the limit of 1048576 bytes/);
    await nothingKept();
  });

  it('when a write-first client posts JSON over the limit (16 kB; 2 MB for /reports), with or without Content-Length, then it reads the 413', async () => {
    const body = Buffer.from(
      JSON.stringify({ email: 'ann@example.com', name: 'x'.repeat(3 * MAX_BYTES) }),
    );
    for (const path of ['/signup', '/webhooks', '/reports']) {
      const declared = await writeThenRead(head(path, 'application/json', body.length), body);
      assert.equal(statusLine(declared), 'HTTP/1.1 413 Payload Too Large', path);
      assert.match(declared, /the JSON body is larger than the limit of \d+ bytes/, path);
      const streamed = await writeThenRead(
        head(path, 'application/json', 'chunked'),
        inChunks(body),
      );
      assert.equal(statusLine(streamed), 'HTTP/1.1 413 Payload Too Large', path);
    }
    await nothingKept();
  });

  it('when a refused client sends more than DISCARD_MAX_BYTES, then the server stops reading there and closes', async () => {
    const before = sockets.length;
    const body = await uploadOf(64 * MAX_BYTES);
    const client = net.connect(port, '127.0.0.1');
    client.on('error', () => undefined); // a reset is the expected end here
    client.pause();
    client.write(head('/thumbnails', MULTIPART_TYPE, body.length));
    client.write(body);
    const socket = await eventually(() => sockets[before], 5_000, 'connection accepted');
    if (!socket.destroyed) await once(socket, 'close');
    client.destroy();
    // Content-Length refused it before any body was read: the discard bound, plus what the
    // last reads carried past it (64 kB each), is all the server read of the 64 MB offered.
    const bound = DISCARD_MAX_BYTES + 1024 * 1024;
    assert.ok(socket.bytesRead < bound, `the server read ${socket.bytesRead} bytes`);
    await nothingKept();
  });

  it('when a refused client stops sending, then the server closes after DISCARD_MAX_MS, the 413 sent', async () => {
    const client = net.connect(port, '127.0.0.1');
    client.on('error', () => undefined);
    client.write(head('/thumbnails', MULTIPART_TYPE, 50 * MAX_BYTES));
    client.write((await uploadOf(10_000)).subarray(0, 5_000));
    let answer = '';
    client.setEncoding('latin1');
    client.on('data', (chunk: string) => (answer += chunk));
    await once(client, 'close');
    assert.equal(statusLine(answer), 'HTTP/1.1 413 Payload Too Large');
    await nothingKept();
  });
});
