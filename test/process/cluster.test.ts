import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config.js';
import { eventually } from '../harness/app.js';
import { startCluster, type TestCluster } from '../harness/cluster.js';
import { makeImage } from '../harness/images.js';
import { startS3, type TestS3 } from '../harness/s3.js';
import { freePort } from '../harness/ports.js';
import { startProcess, type Proc } from '../harness/procfile.js';
import { startSmtp, type TestSmtp } from '../harness/smtp.js';

describe('web and worker on a 3-node Redis Cluster (REDIS_URL lists the nodes)', function () {
  this.timeout(120_000);
  let cluster: TestCluster | undefined;
  let smtp: TestSmtp | undefined;
  let s3: TestS3 | undefined;
  const procs: Proc[] = [];
  let base = '';

  before(async () => {
    cluster = await startCluster();
    smtp = await startSmtp();
    s3 = await startS3();
    const dir = await mkdtemp(join(tmpdir(), 'offload-cluster-'));
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    const env = {
      REDIS_URL: cluster.nodes.map((node) => node.url).join(','),
      // The hash tag puts every key of every queue in one slot: BullMQ's scripts and flows
      // (a report's chunks and their parent) touch keys of several queues at once.
      QUEUE_PREFIX: '{offload-test}',
      SMTP_URL: smtp.url,
      OUTBOX_DIR: join(dir, 'outbox'),
      PORT: String(port),
      PUBLIC_URL: base,
      // Files in the bucket, and each process with a disk of its own, as on a PaaS.
      ...s3.env,
    };
    const web = startProcess('web', { ...env, STORAGE_DIR: join(dir, 'web-storage') });
    const worker = startProcess('worker', { ...env, STORAGE_DIR: join(dir, 'worker-storage') });
    procs.push(web, worker);
    await web.waitForLog((l) => l.msg === 'web listening', 30_000);
    await worker.waitForLog((l) => l.msg === 'consuming queues', 30_000);
  });
  after(async () => {
    await Promise.all(procs.map((p) => p.stop('SIGKILL')));
    await smtp?.close();
    await s3?.close();
    await cluster?.close();
  });

  const post = async (path: string, body: RequestInit['body'], json = true) => {
    const res = await fetch(`${base}${path}`, {
      method: 'POST',
      ...(json ? { headers: { 'content-type': 'application/json' } } : {}),
      body,
    });
    assert.equal(res.status, 202, path);
    return ((await res.json()) as { id: string }).id;
  };
  const completed = (id: string) =>
    eventually(
      async () => {
        const status = (await (await fetch(`${base}/jobs/${id}`)).json()) as { state: string };
        assert.notEqual(status.state, 'failed', JSON.stringify(status));
        return status.state === 'completed' ? true : undefined;
      },
      60_000,
      `${id} completed`,
    );

  it('when a signup, an upload and a small report come in, then they all complete through the cluster', async () => {
    assert.ok(smtp);
    const signup = await post('/signup', JSON.stringify({ email: 'c@example.com', name: 'Clu' }));
    const form = new FormData();
    form.append('image', new Blob([await makeImage('jpeg', 320, 240)]), 'p.jpg');
    const thumbnail = await post('/thumbnails', form, false);
    const report = await post(
      '/reports',
      JSON.stringify({ email: 'cluster-report@example.com', sample: 3 }),
    );
    for (const id of [signup, thumbnail, report]) await completed(id);
    await smtp.waitFor((m) => m.to.includes('c@example.com'));
    await smtp.waitFor((m) => m.to.includes('cluster-report@example.com'), 30_000);
    const ready = (await (await fetch(`${base}/readyz`)).json()) as { ok: boolean };
    assert.equal(ready.ok, true, JSON.stringify(ready));
  });

  it('when REDIS_URL lists several nodes, then QUEUE_PREFIX must hold a hash tag', () => {
    const REDIS_URL = 'redis://10.0.0.1:7000,redis://10.0.0.2:7000';
    assert.throws(() => loadConfig({ REDIS_URL }), /QUEUE_PREFIX: a cluster .* needs a hash tag/);
    assert.equal(loadConfig({ REDIS_URL, QUEUE_PREFIX: '{app}' }).REDIS_URL, REDIS_URL);
    assert.throws(() => loadConfig({ REDIS_URL: 'redis://a:1,http://b:2' }), /REDIS_URL/);
  });
});
