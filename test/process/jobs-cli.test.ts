import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { Job, Queue } from 'bullmq';
import cleanStorage from '../../jobs/clean-storage.js';
import makeThumbnail, { uploadKey } from '../../jobs/make-thumbnail.js';
import sendEmail from '../../jobs/send-email.js';
import { registry } from '../../src/process/boot.js';
import type { JobData } from '../../src/offload/index.js';
import { createLogger } from '../../src/logger.js';
import { reconcileSchedules } from '../../src/offload/schedules.js';
import { createWorkerConnection } from '../../src/redis/connections.js';
import { createTestApp, eventually, type TestApp } from '../harness/app.js';
import { freePort } from '../harness/ports.js';

/** The package.json script itself (`npm run jobs -- ...` without npm's own start-up). */
const [bin = '', ...scriptArgs] = (
  JSON.parse(readFileSync('package.json', 'utf8')) as { scripts: Record<string, string> }
).scripts.jobs!.split(/\s+/);

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

describe('the jobs CLI (npm run jobs)', function () {
  // Each run is a fresh Node process compiling TypeScript (tsx), on a shared 2-core machine.
  this.timeout(90_000);
  let t: TestApp;
  let env: Record<string, string>;

  /** Runs the CLI as a child process against this test's queues. */
  async function jobs(args: string[], extraEnv: Record<string, string> = {}): Promise<Run> {
    try {
      const { stdout, stderr } = await promisify(execFile)(bin, [...scriptArgs, ...args], {
        env: { ...process.env, ...env, ...extraEnv },
        // A bound on a hang, not a speed check: five CLIs start at once under tsx, and one
        // waits out its 5 s connect limit; a loaded CI machine took over 20 s.
        timeout: 60_000,
      });
      return { code: 0, stdout, stderr };
    } catch (error) {
      const failed = error as { code?: unknown; stdout?: string; stderr?: string };
      if (typeof failed.code !== 'number') throw error;
      return { code: failed.code, stdout: failed.stdout ?? '', stderr: failed.stderr ?? '' };
    }
  }
  const ok = async (args: string[]) => {
    const run = await jobs(args);
    assert.equal(run.code, 0, `jobs ${args.join(' ')}: ${run.stderr}`);
    return run.stdout;
  };

  before(async () => {
    // Workers for `media` only: mail jobs wait, so the queue has a latency to show.
    t = await createTestApp({ WORKER_QUEUES: 'media' });
    env = {
      REDIS_URL: t.config.REDIS_URL,
      QUEUE_PREFIX: t.config.QUEUE_PREFIX,
      LOG_LEVEL: 'warn',
    };
  });
  after(() => t.close());

  it('when asked for queues, then each queue shows its counts and the age of its oldest waiting job', async () => {
    const waiting = await t.offloader.enqueue(sendEmail, {
      to: 'ada@example.com',
      template: 'welcome',
      name: 'Ada',
    });
    // Old enough to show: the latency column has a tenth of a second's precision.
    const createdAt = Date.parse((await t.offloader.status(waiting.id))?.createdAt ?? '');
    await eventually(() => (Date.now() - createdAt >= 200 ? true : undefined));
    const out = await ok(['queues']);
    const rows = out.trim().split('\n');
    assert.match(
      rows[0] ?? '',
      /^QUEUE\s+WAITING\s+DELAYED\s+ACTIVE\s+COMPLETED\s+FAILED\s+LATENCY$/,
    );
    assert.deepEqual(
      rows.slice(1).map((row) => row.split(/\s+/)[0]),
      registry.queues,
    );
    const mail = rows.find((row) => row.startsWith('mail '))?.split(/\s+/);
    assert.deepEqual(mail?.slice(1, 6), ['1', '0', '0', '0', '0']);
    assert.match(mail[6] ?? '', /^\d+\.\ds$/);
    assert.ok(Number.parseFloat(mail[6] ?? '') >= 0.2, `mail's latency: ${out}`);
    const media = rows.find((row) => row.startsWith('media '))?.split(/\s+/);
    assert.equal(media?.[6], '0.0s', 'nothing waits in media');

    const shown = JSON.parse(await ok(['show', waiting.id])) as { id: string; state: string };
    assert.equal(shown.id, waiting.id);
    assert.equal(shown.state, 'waiting');
    const unknown = await jobs(['show', randomUUID()]);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /^no job /);

    // cancel reaches it through Redis (the offloader's cancel), and the job reads cancelled.
    assert.match(await ok(['cancel', waiting.id]), /^cancelled send-email /);
    assert.equal((await t.offloader.status(waiting.id))?.state, 'cancelled');
    // Cancelling it again changes nothing and is refused, as DELETE /jobs/:id answers 409.
    const again = await jobs(['cancel', waiting.id]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, new RegExp(`^job ${waiting.id} is already cancelled`));
  });

  it('when a job failed for good, then `failed` lists it and `replay` runs it again, refusing bad input', async () => {
    t.startWorkers();
    const { id } = await t.offloader.enqueue(makeThumbnail, { key: uploadKey(randomUUID()) });
    await eventually(async () =>
      (await t.offloader.status(id))?.state === 'failed' ? true : undefined,
    );

    // Read-only or refused: they can run side by side.
    const [listed, mail, badQueue, badInput, notJson] = await Promise.all([
      ok(['failed']),
      ok(['failed', 'mail']),
      jobs(['failed', 'nope']),
      jobs(['replay', id, '--input', '{"key":"elsewhere"}']),
      jobs(['replay', id, '--input', '{key']),
    ]);
    assert.match(listed, /^ID\s+JOB\s+QUEUE\s+ATTEMPTS\s+FAILED AT\s+ERROR\n/);
    assert.match(
      listed,
      new RegExp(`^${id}\\s+make-thumbnail\\s+media\\s+1\\s+\\S+Z\\s+.*upload`, 'm'),
    );
    assert.match(mail, /^no failed jobs$/m);
    assert.equal(badQueue.code, 1);
    assert.match(badQueue.stderr, /no queue named "nope"/);
    assert.equal(badInput.code, 1);
    assert.match(badInput.stderr, /invalid input:\n {2}key: /);
    assert.equal(notJson.code, 1);
    assert.match(notJson.stderr, /--input is not JSON/);
    assert.equal((await t.offloader.status(id))?.state, 'failed', 'nothing changed');

    const queue = new Queue('media', {
      connection: { url: t.config.REDIS_URL },
      prefix: t.config.QUEUE_PREFIX,
    });
    try {
      assert.match(await ok(['replay', id]), new RegExp(`^replayed make-thumbnail ${id}: `));
      // Ran again (the upload is still missing): two failed runs in its history now.
      await eventually(async () => {
        const job = await Job.fromId(queue, id);
        return job?.finishedOn && job.stacktrace?.length === 2 ? true : undefined;
      });
    } finally {
      await queue.close();
    }
    const completed = await t.offloader.enqueue(cleanStorage, {});
    await eventually(async () =>
      (await t.offloader.status(completed.id))?.state === 'completed' ? true : undefined,
    );
    const [refused, notCancelled] = await Promise.all([
      jobs(['replay', completed.id]),
      jobs(['cancel', completed.id]),
    ]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /is completed: only failed jobs can be replayed/);
    assert.equal(notCancelled.code, 1);
    assert.match(notCancelled.stderr, /is already completed/);
  });

  it('when asked for schedules and to trigger one, then declared schedules show their next run and the job is enqueued with its schedule input', async () => {
    const before = await ok(['schedules']);
    assert.match(before, /^clean-storage\s+media\s+every 1h\s+/m);
    // What a worker does when it starts: then Redis has the next run.
    const connection = createWorkerConnection(t.config.REDIS_URL, createLogger('silent', 'test'));
    try {
      await reconcileSchedules({
        registry,
        queues: registry.queues,
        connection,
        prefix: t.config.QUEUE_PREFIX,
        log: createLogger('silent', 'test'),
      });
    } finally {
      await connection.quit();
    }
    const after = await ok(['schedules']);
    const next = /^clean-storage\s+media\s+every 1h\s+(\S+)$/m.exec(after)?.[1];
    assert.ok(next && Date.parse(next) > Date.now(), `a next run in the future: ${after}`);

    const triggered = await ok(['trigger', 'clean-storage']);
    const id = /^enqueued clean-storage (\S+): waiting/.exec(triggered)?.[1];
    assert.ok(id, triggered);
    const queue = new Queue('media', {
      connection: { url: t.config.REDIS_URL },
      prefix: t.config.QUEUE_PREFIX,
    });
    try {
      const job = await Job.fromId(queue, id);
      assert.equal(job?.name, 'clean-storage');
      assert.deepEqual((job.data as JobData).input, {}, 'the schedule input');
    } finally {
      await queue.close();
    }

    const unknownJob = await jobs(['trigger', 'nope']);
    assert.equal(unknownJob.code, 1);
    assert.match(unknownJob.stderr, /no job named "nope" \(known: .*send-email/);
    const badInput = await jobs(['trigger', 'make-thumbnail', '--input', '{}']);
    assert.equal(badInput.code, 1);
    assert.match(badInput.stderr, /invalid input:\n {2}key: /);
  });

  it('when the command is unknown, the configuration bad or Redis unreachable, then it exits 1 saying so', async () => {
    const port = await freePort();
    const [unknown, none, help, badConfig, away] = await Promise.all([
      jobs(['frobnicate']),
      jobs([]),
      jobs(['--help']),
      jobs(['queues'], { QUEUE_PREFIX: 'has space' }),
      jobs(['queues'], { REDIS_URL: `redis://:secret@127.0.0.1:${port}` }),
    ]);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /^unknown command "frobnicate"\n\nusage: npm run jobs/);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /usage: /);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /^usage: npm run jobs -- <command>/);
    assert.equal(badConfig.code, 1);
    assert.match(badConfig.stderr, /QUEUE_PREFIX: /);
    assert.equal(away.code, 1);
    assert.match(away.stderr, new RegExp(`cannot reach Redis at 127\\.0\\.0\\.1:${port}`));
    assert.doesNotMatch(away.stderr, /secret/);
  });
});
