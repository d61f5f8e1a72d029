import assert from 'node:assert/strict';
import { registry } from '../../src/process/boot.js';
import { sharedRedisUrl } from '../harness/global.js';
import { makeImage } from '../harness/images.js';
import type { LogLine, Proc } from '../harness/procfile.js';
import { startStack, type Stack } from '../harness/stack.js';

/** The job names `worker` logged as completed. */
const completedBy = (worker: Proc) =>
  new Set(worker.lines.filter((l: LogLine) => l.msg === 'job completed').map((l) => String(l.job)));

describe('one web and three workers, one per queue (WORKER_QUEUES=mail / media / reports)', function () {
  this.timeout(90_000);
  let stack: Stack | undefined;
  const workers: Record<'mail' | 'media' | 'reports', Proc | undefined> = {
    mail: undefined,
    media: undefined,
    reports: undefined,
  };

  before(async () => {
    stack = await startStack(sharedRedisUrl());
    await stack.startWeb({ PUBLIC_URL: stack.base });
    for (const queue of ['mail', 'media', 'reports'] as const) {
      workers[queue] = await stack.startWorker({ WORKER_QUEUES: queue });
    }
  });
  after(() => stack?.close());

  it('when a signup, an upload and a report come in, then each job runs on the worker of its queue, and only there', async () => {
    assert.ok(stack && workers.mail && workers.media && workers.reports);
    const signup = await stack.signup('many@example.com');
    assert.equal(signup.status, 202);

    const form = new FormData();
    form.append('image', new Blob([await makeImage('png', 300, 200)]), 'p.png');
    const upload = await fetch(`${stack.base}/thumbnails`, { method: 'POST', body: form });
    assert.equal(upload.status, 202);
    const thumbnail = ((await upload.json()) as { id: string }).id;

    const asked = await fetch(`${stack.base}/reports`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: 'many-report@example.com', sample: 3 }),
    });
    assert.equal(asked.status, 202);
    const report = ((await asked.json()) as { id: string }).id;

    await stack.allCompleted([signup.id!, thumbnail, report], 60_000);
    // The report's mail is a follow-up job in the mail queue: the mail worker sends it.
    await stack.smtp.waitFor((m) => m.to.includes('many-report@example.com'), 30_000);
    // Its log line may trail the SMTP reply: wait for both mails' 'job completed'.
    const mailWorker = workers.mail;
    await mailWorker.waitForLog(
      () =>
        mailWorker.lines.filter((l) => l.msg === 'job completed' && l.job === 'send-email')
          .length === 2,
    );

    const done = {
      mail: completedBy(workers.mail),
      media: completedBy(workers.media),
      reports: completedBy(workers.reports),
    };
    assert.ok(done.mail.has('send-email'));
    assert.ok(done.media.has('make-thumbnail'));
    assert.ok(done.reports.has('render-cards') && done.reports.has('zip-report'));
    // Nothing ran off its queue (media also runs the scheduled clean-storage).
    for (const [queue, names] of Object.entries(done)) {
      for (const name of names)
        assert.equal(registry.get(name)?.queue, queue, `${name} on ${queue}`);
    }
    // Each logs the queues it consumes when it starts.
    for (const [queue, worker] of Object.entries(workers)) {
      const consuming = worker?.lines.find((l) => l.msg === 'consuming queues');
      assert.deepEqual(consuming?.queues, [queue], JSON.stringify(consuming));
    }
  });
});
