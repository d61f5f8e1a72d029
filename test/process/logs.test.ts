import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readiness } from '../../src/process/monitor.js';
import { eventually } from '../harness/app.js';
import { sharedRedisUrl } from '../harness/global.js';
import { freePort } from '../harness/ports.js';
import { startProcess, type LogLine, type Proc } from '../harness/procfile.js';
import { startSmtp, type TestSmtp } from '../harness/smtp.js';

describe('logs, preflight and heartbeats of the Procfile processes', function () {
  this.timeout(60_000);
  let smtp: TestSmtp;
  let web: Proc;
  let worker: Proc;
  let base: string;
  const password = `admin-secret-${randomUUID()}`;

  before(async () => {
    smtp = await startSmtp();
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    const dir = await mkdtemp(join(tmpdir(), 'offload-logs-'));
    const env = {
      REDIS_URL: sharedRedisUrl(),
      QUEUE_PREFIX: `l${randomUUID().slice(0, 8)}`,
      SMTP_URL: smtp.url,
      ADMIN_PASSWORD: password, // it must appear in no log line
      OUTBOX_DIR: join(dir, 'outbox'),
      STORAGE_DIR: join(dir, 'storage'),
      PORT: String(port),
      LOG_LEVEL: 'debug',
    };
    web = startProcess('web', env);
    worker = startProcess('worker', env);
    await Promise.all([
      web.waitForLog((l) => l.msg === 'web listening'),
      worker.waitForLog((l) => l.msg === 'consuming queues'),
    ]);
  });

  after(async () => {
    await Promise.all([web.stop('SIGKILL'), worker.stop('SIGKILL')]);
    await smtp.close();
  });

  it("when a signed download is requested, then web's request line keeps its path but not its signature", async () => {
    const signature = `sig${randomUUID().replaceAll('-', '')}`;
    const res = await fetch(`${base}/files/thumbnails/x.webp?exp=1&sig=${signature}`);
    await res.arrayBuffer();
    const line = await web.waitForLog(
      (l) => l.msg === 'request' && String(l.url).startsWith('/files/thumbnails/x.webp'),
    );
    assert.equal(line.url, '/files/thumbnails/x.webp?exp=1&sig=[Redacted]');
    assert.ok(!web.lines.some((l) => JSON.stringify(l).includes(signature)));
  });

  it('when both start, then each logs its Redis preflight', async () => {
    for (const proc of [web, worker]) {
      const line = await proc.waitForLog((l) => l.msg === 'redis preflight passed');
      assert.equal(line.maxmemoryPolicy, 'noeviction');
      assert.equal(line.persistence, 'aof');
    }
  });

  it("when a request carries X-Request-Id, then web echoes it and the worker's lines for its job carry it", async () => {
    const requestId = `test-${randomUUID()}`;
    const email = `logs-${randomUUID().slice(0, 8)}@example.com`;
    const res = await fetch(`${base}/signup`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': requestId },
      body: JSON.stringify({ email, name: 'Log Test' }),
    });
    assert.equal(res.status, 202);
    assert.equal(res.headers.get('x-request-id'), requestId);
    const { id } = (await res.json()) as { id: string };

    const ofJob = (l: LogLine) => l.jobId === id;
    const completed = await worker.waitForLog((l) => ofJob(l) && l.msg === 'job completed');
    assert.equal(completed.reqId, requestId);
    const jobLines = worker.lines.filter(ofJob);
    assert.ok(jobLines.length >= 3, 'started, email sent, completed');
    for (const line of jobLines) assert.equal(line.reqId, requestId, String(line.msg));
    const requestLine = await web.waitForLog((l) => l.msg === 'request' && l.reqId === requestId);
    assert.equal(requestLine.status, 202);

    // One grep follows the request; none shows the address, the mail or a password.
    await smtp.waitFor((m) => m.to.includes(email));
    const basic = (pw: string) => `Basic ${Buffer.from(`admin:${pw}`).toString('base64')}`;
    for (const pw of [password, `${password}-wrong`]) {
      await fetch(`${base}/admin/queues/api/queues`, { headers: { authorization: basic(pw) } });
    }
    await web.waitForLog((l) => l.msg === 'admin login refused');
    for (const line of [...web.lines, ...worker.lines]) {
      const text = JSON.stringify(line);
      assert.ok(!text.includes(email), `no email address in: ${text}`);
      assert.ok(!text.includes(password), `no password in: ${text}`);
      assert.ok(!text.includes('Welcome, Log Test'), `no mail subject or body in: ${text}`);
    }
  });

  it('when web has served requests, then it has not loaded sharp (libvips is in the worker only)', async function () {
    const maps = `/proc/${web.child.pid}/maps`;
    if (!existsSync(maps)) {
      console.log(`      skipped: no ${maps} (not Linux), so loaded libraries cannot be listed`);
      this.skip();
    }
    const probe = await fetch(`${base}/metrics`);
    assert.equal(probe.status, 200);
    assert.doesNotMatch(await readFile(maps, 'utf8'), /libvips/);
  });

  it('when the worker beats, then /readyz counts it per queue; after its SIGTERM, none', async () => {
    const readyz = async () => (await (await fetch(`${base}/readyz`)).json()) as Readiness;
    const live = await eventually(async () => {
      const report = await readyz();
      return report.workers?.mail === 1 ? report : undefined;
    });
    assert.equal(live.ok, true);
    assert.ok(
      Object.values(live.workers ?? {}).every((n) => n === 1),
      'every queue',
    );
    assert.equal(await worker.stop('SIGTERM'), 0);
    const report = await readyz();
    assert.equal(report.workers?.mail, 0);
    assert.match(report.warnings.join(), /none is consuming queue "mail"/);
  });
});
