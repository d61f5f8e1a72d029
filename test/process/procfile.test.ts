import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { eventually } from '../harness/app.js';
import { sharedRedisUrl } from '../harness/global.js';
import { makeImage } from '../harness/images.js';
import { freePort } from '../harness/ports.js';
import { startProcess, stoppedIn, type Proc } from '../harness/procfile.js';
import { startReceiver } from '../harness/receiver.js';
import { startSmtp, type TestSmtp } from '../harness/smtp.js';

interface Status {
  state: string;
  attempts: number;
  finishedAt?: string;
}

describe('Procfile processes (web + worker as child processes)', function () {
  this.timeout(60_000);
  let smtp: TestSmtp;
  let env: Record<string, string>;
  let web: Proc;
  let base: string;
  const workers: Proc[] = [];

  const startWorker = async (extra: Record<string, string> = {}) => {
    const worker = startProcess('worker', { ...env, ...extra });
    workers.push(worker);
    await worker.waitForLog((l) => l.msg === 'consuming queues');
    return worker;
  };
  const signup = async (email: string) => {
    const res = await fetch(`${base}/signup`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email, name: 'Proc Test' }),
    });
    assert.equal(res.status, 202);
    return (await res.json()) as { id: string; statusUrl: string };
  };
  const status = async (url: string) => (await (await fetch(`${base}${url}`)).json()) as Status;
  const completed = (url: string, timeoutMs = 15_000) =>
    eventually(
      async () => {
        const s = await status(url);
        return s.state === 'completed' ? s : undefined;
      },
      timeoutMs,
      `${url} completed`,
    );

  before(async () => {
    smtp = await startSmtp();
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    const dir = await mkdtemp(join(tmpdir(), 'offload-'));
    env = {
      REDIS_URL: sharedRedisUrl(),
      QUEUE_PREFIX: `p${randomUUID().slice(0, 8)}`,
      SMTP_URL: smtp.url,
      OUTBOX_DIR: join(dir, 'outbox'),
      // One directory for both: on one machine, web and worker share the disk.
      STORAGE_DIR: join(dir, 'storage'),
      PORT: String(port),
      LOG_LEVEL: 'info',
      // Fast crash recovery for the kill -9 test: a dead worker's lock lapses in 2 s.
      WORKER_LOCK_MS: '2000',
      WORKER_STALLED_INTERVAL_MS: '1000',
      WEBHOOK_ALLOW_PRIVATE: 'true', // the webhook receiver is on loopback
    };
    web = startProcess('web', env);
    await web.waitForLog((l) => l.msg === 'web listening');
  });

  after(async () => {
    await Promise.all([web, ...workers].map((p) => p.stop('SIGKILL')));
    await smtp.close();
  });

  it('when a signup is posted to web, then the worker process sends the mail and the status turns completed', async () => {
    await startWorker();
    const { statusUrl } = await signup('proc@example.com');
    await completed(statusUrl);
    await smtp.waitFor((m) => m.to.includes('proc@example.com'));
  });

  it('when an image is uploaded to web, then the worker process makes thumbnails that web serves', async () => {
    const worker = workers.at(-1)!; // consumes every queue, media included
    const form = new FormData();
    const photo = await makeImage('jpeg', 800, 600);
    form.append('image', new Blob([photo], { type: 'image/jpeg' }), 'photo.jpg');
    const res = await fetch(`${base}/thumbnails`, { method: 'POST', body: form });
    assert.equal(res.status, 202);
    const { statusUrl } = (await res.json()) as { statusUrl: string };
    await completed(statusUrl);
    const { result } = (await (await fetch(`${base}${statusUrl}`)).json()) as {
      result: { thumbnails: { width: number; url: string }[] };
    };
    assert.deepEqual(
      result.thumbnails.map((t) => t.width),
      [128, 512, 800],
    );
    for (const { width, url } of result.thumbnails) {
      const download = await fetch(`${base}${url}`);
      assert.equal(download.status, 200);
      const meta = await sharp(Buffer.from(await download.arrayBuffer())).metadata();
      assert.deepEqual([meta.format, meta.width], ['webp', width]);
    }
    assert.ok(worker.lines.some((l) => l.msg === 'job completed' && l.job === 'make-thumbnail'));
  });

  it('when DELETE /jobs/:id reaches web while a worker process runs the job, then that worker aborts it and it reads cancelled', async () => {
    const worker = workers.at(-1)!;
    const receiver = await startReceiver();
    try {
      receiver.script('/hang', ['hang']);
      const res = await fetch(`${base}/webhooks`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ url: receiver.url('/hang'), event: 'order.paid', payload: {} }),
      });
      assert.equal(res.status, 202);
      const { id, statusUrl } = (await res.json()) as { id: string; statusUrl: string };
      await receiver.waitFor('/hang', 1); // the worker process is inside the call now
      const cancel = await fetch(`${base}${statusUrl}`, { method: 'DELETE' });
      assert.equal(cancel.status, 200);
      assert.equal(((await cancel.json()) as Status).state, 'cancelled');
      await worker.waitForLog((l) => l.msg === 'job cancelled while running' && l.jobId === id);
      const final = await eventually(async () => {
        const s = await status(statusUrl);
        return s.finishedAt ? s : undefined;
      });
      assert.equal(final.state, 'cancelled');
      await eventually(() => (receiver.received('/hang')[0]?.abandoned ? true : undefined));
      assert.equal(receiver.received('/hang').length, 1, 'not retried');
    } finally {
      await receiver.close();
    }
  });

  it('when the worker gets SIGTERM during a job, then it finishes the job, takes no new one, and exits 0', async () => {
    const worker = workers.at(-1)!;
    smtp.delayMs = 1_500;
    try {
      const { id, statusUrl } = await signup('term@example.com');
      await worker.waitForLog((l) => l.msg === 'job started' && l.jobId === id);
      assert.equal(await worker.stop('SIGTERM'), 0);
      assert.ok((await stoppedIn(worker)) < 10_000, 'exited well inside the shutdown timeout');
      assert.ok(worker.lines.some((l) => l.msg === 'job completed' && l.jobId === id));
      assert.equal((await status(statusUrl)).state, 'completed');
      await smtp.waitFor((m) => m.to.includes('term@example.com'));

      // With no worker left, a new job waits: the stopped worker took nothing more.
      const next = await signup('later@example.com');
      assert.equal((await status(next.statusUrl)).state, 'waiting');
      await startWorker();
      await completed(next.statusUrl);
    } finally {
      smtp.delayMs = 0;
    }
  });

  it('when the worker is killed -9 mid-job, then a restarted worker runs the job to completion', async () => {
    const doomed = workers.at(-1)!;
    smtp.delayMs = 3_000;
    try {
      const { id, statusUrl } = await signup('kill@example.com');
      await doomed.waitForLog((l) => l.msg === 'job started' && l.jobId === id);
      assert.equal(await doomed.stop('SIGKILL'), 'SIGKILL');
      assert.equal(
        (await status(statusUrl)).state,
        'active',
        'still active: its lock has not lapsed yet',
      );

      smtp.delayMs = 0;
      const restarted = await startWorker();
      const done = await completed(statusUrl, 20_000);
      assert.equal(done.attempts, 2, 'the job ran again after the crash');
      assert.ok(restarted.lines.some((l) => l.msg === 'job completed' && l.jobId === id));
      // At-least-once: the killed run may have reached the server. Every copy has one Message-ID.
      await smtp.waitFor((m) => m.to.includes('kill@example.com'));
      const ids = new Set(
        smtp.received.filter((m) => m.to.includes('kill@example.com')).map((m) => m.mail.messageId),
      );
      assert.deepEqual([...ids], [`<${id}@offload.localhost>`]);
    } finally {
      smtp.delayMs = 0;
    }
  });

  it('when a job outlasts the shutdown timeout, then the worker hands it back, exits in time, and the next worker completes it', async () => {
    await Promise.all(workers.map((w) => w.stop('SIGTERM'))); // only this one may take the job
    const worker = await startWorker({ SHUTDOWN_TIMEOUT_MS: '2000' });
    smtp.delayMs = 6_000;
    try {
      const { id, statusUrl } = await signup('long@example.com');
      await worker.waitForLog((l) => l.msg === 'job started' && l.jobId === id);
      // Exit code 0: it finished before its own hard deadline (which exits 1).
      assert.equal(await worker.stop('SIGTERM'), 0);
      assert.ok((await stoppedIn(worker)) < 2_000, 'exited within its 2 s timeout');
      assert.ok(
        worker.lines.some((l) => l.msg === 'job interrupted by shutdown, put back in its queue'),
      );
      assert.equal(
        (await status(statusUrl)).state,
        'waiting',
        'back in the queue at once, no lock to wait for',
      );

      smtp.delayMs = 0;
      const next = await startWorker();
      await completed(statusUrl);
      // Its log line was written before the completion, but may reach this process after it.
      await next.waitForLog((l) => l.msg === 'job completed' && l.jobId === id);
    } finally {
      smtp.delayMs = 0;
    }
  });

  it('when web gets SIGTERM, then it stops accepting, closes its connections and exits 0', async () => {
    assert.equal(await web.stop('SIGTERM'), 0);
    assert.ok(web.lines.some((l) => l.msg === 'stopped' && l.code === 0));
  });
});

describe('web process in embedded mode', function () {
  this.timeout(30_000);

  it('when no worker process runs, then web runs the job itself', async () => {
    const smtp = await startSmtp();
    const port = await freePort();
    const web = startProcess('web', {
      REDIS_URL: sharedRedisUrl(),
      QUEUE_PREFIX: `e${randomUUID().slice(0, 8)}`,
      SMTP_URL: smtp.url,
      PORT: String(port),
      OFFLOAD_MODE: 'embedded',
    });
    try {
      await web.waitForLog((l) => l.msg === 'web listening');
      const res = await fetch(`http://127.0.0.1:${port}/signup`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email: 'embedded@example.com', name: 'Em' }),
      });
      assert.equal(res.status, 202);
      await smtp.waitFor((m) => m.to.includes('embedded@example.com'));
      assert.equal(await web.stop('SIGTERM'), 0);
    } finally {
      await web.stop('SIGKILL');
      await smtp.close();
    }
  });
});
