import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readdir } from 'node:fs/promises';
import type { Server } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { join } from 'node:path';
import { createHttpServer } from '../../src/http/server.js';
import { createTestApp, eventually, type TestApp } from '../harness/app.js';
import { makeImage } from '../harness/images.js';
import { BOUNDARY, MULTIPART_TYPE } from '../harness/multipart.js';

const HEADERS_MS = 1_000;
const REQUEST_MS = 2_000;
/** Node looks for late connections once a second (src/http/server.ts), plus a loaded machine. */
const SLACK_MS = 2_500;

interface Trickled {
  /** What the server answered before it closed, if anything. */
  answer: string;
  /** From the first byte sent to the close. */
  ms: number;
}

/** Sends `head` at once, then one byte of `drip` every 200 ms, until the server closes. */
async function trickle(port: number, head: Buffer | string, drip: string): Promise<Trickled> {
  const socket: Socket = connect(port, '127.0.0.1');
  await once(socket, 'connect');
  const started = performance.now();
  let answer = '';
  socket.on('data', (chunk: Buffer) => (answer += chunk.toString('latin1')));
  socket.on('error', () => undefined); // a reset after the server's close is expected
  socket.write(head);
  let i = 0;
  const timer = setInterval(() => {
    if (!socket.destroyed) socket.write(drip[i++ % drip.length]!);
  }, 200);
  await once(socket, 'close');
  clearInterval(timer);
  return { answer, ms: performance.now() - started };
}

describe('server timeouts (src/http/server.ts)', function () {
  this.timeout(30_000);
  let t: TestApp;
  let server: Server;
  let port: number;
  before(async () => {
    t = await createTestApp({
      HTTP_HEADERS_TIMEOUT_MS: String(HEADERS_MS),
      HTTP_REQUEST_TIMEOUT_MS: String(REQUEST_MS),
    });
    server = createHttpServer(t.app, t.config).listen(0, '127.0.0.1');
    await once(server, 'listening');
    port = (server.address() as AddressInfo).port;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await t.close();
  });

  it('when a client trickles its headers, then it is answered 408 and cut off after HTTP_HEADERS_TIMEOUT_MS', async () => {
    const { answer, ms } = await trickle(
      port,
      'GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: ',
      'abcdefghij',
    );
    assert.match(answer, /^HTTP\/1\.1 408 /);
    assert.ok(ms >= HEADERS_MS - 100 && ms < HEADERS_MS + SLACK_MS, `cut off after ${ms} ms`);
  });

  it('when a client trickles an upload, then it is cut off after HTTP_REQUEST_TIMEOUT_MS, and nothing is stored or enqueued', async () => {
    const photo = await makeImage('jpeg', 800, 600);
    const partHead = `--${BOUNDARY}\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\nContent-Type: image/jpeg\r\n\r\n`;
    const length = partHead.length + photo.length + 100; // promised, never all sent
    const head = Buffer.concat([
      Buffer.from(
        `POST /thumbnails HTTP/1.1\r\nHost: localhost\r\nContent-Type: ${MULTIPART_TYPE}\r\nContent-Length: ${length}\r\n\r\n${partHead}`,
        'latin1',
      ),
      photo.subarray(0, photo.length / 2), // half the image at once: storing has begun
    ]);
    const uploads = join(t.config.STORAGE_DIR, 'uploads');
    const trickled = trickle(port, head, '\x00');
    // The upload has reached storage before the cut (a temp file or the stored key).
    await eventually(
      async () => (await readdir(uploads).catch(() => [])).length > 0 || undefined,
      5_000,
      'an upload in storage',
    );
    const { answer, ms } = await trickled;
    assert.ok(ms >= REQUEST_MS - 100 && ms < REQUEST_MS + SLACK_MS, `cut off after ${ms} ms`);
    assert.match(answer, /^(HTTP\/1\.1 408 |$)/, 'a 408, or just the close');
    await eventually(
      async () => ((await readdir(uploads)).length === 0 ? true : undefined),
      5_000,
      'the partial upload removed',
    );
    assert.equal(await t.countJobs('media'), 0);
  });
});
