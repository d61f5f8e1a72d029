import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeImage } from '../harness/images.js';
import { startS3, type TestS3 } from '../harness/s3.js';
import { startProcess } from '../harness/procfile.js';
import { startStack, type Stack } from '../harness/stack.js';
import { startTlsRedis, type TlsRedis } from '../harness/tls.js';

describe('web and worker on a TLS Redis (rediss://, self-signed, REDIS_TLS_VERIFY=false)', function () {
  this.timeout(90_000);
  let tls: TlsRedis | undefined;
  let stack: Stack | undefined;
  let s3: TestS3 | undefined;

  before(async function () {
    tls = await startTlsRedis();
    if (!tls) this.skip();
    // Only the rediss:// URL: the processes never see the server's plain port.
    // Files in the bucket, and each process with a disk of its own, as on a PaaS.
    s3 = await startS3();
    const dir = await mkdtemp(join(tmpdir(), 'offload-tls-disks-'));
    stack = await startStack(tls.url, { REDIS_TLS_VERIFY: 'false', ...s3.env });
    await stack.startWeb({ STORAGE_DIR: join(dir, 'web') });
    await stack.startWorker({ STORAGE_DIR: join(dir, 'worker') });
  });
  after(async () => {
    await stack?.close();
    await tls?.close();
    await s3?.close();
  });

  it('when a signup and an upload come in, then the worker runs both over TLS and web reports them completed', async () => {
    assert.ok(stack);
    const signup = await stack.signup('tls@example.com');
    assert.equal(signup.status, 202);
    const form = new FormData();
    form.append('image', new Blob([await makeImage('jpeg', 320, 240)]), 'p.jpg');
    const upload = await fetch(`${stack.base}/thumbnails`, { method: 'POST', body: form });
    assert.equal(upload.status, 202);
    const { id } = (await upload.json()) as { id: string };
    await stack.allCompleted([signup.id!, id], 30_000);
    await stack.smtp.waitFor((m) => m.to.includes('tls@example.com'));
    const ready = (await (await fetch(`${stack.base}/readyz`)).json()) as { ok: boolean };
    assert.equal(ready.ok, true);
  });

  it('when a worker checks certificates (REDIS_TLS_VERIFY=true), then it refuses the self-signed one and says so', async () => {
    assert.ok(stack);
    const strict = startProcess('worker', { ...stack.env, REDIS_TLS_VERIFY: 'true' });
    try {
      const refused = await strict.waitForLog(
        (l) => l.msg?.startsWith('redis connection error') === true,
      );
      assert.match(JSON.stringify(refused), /self[- ]signed/);
      assert.ok(!strict.lines.some((l) => l.msg === 'job started'));
    } finally {
      await strict.stop('SIGKILL');
    }
  });
});
