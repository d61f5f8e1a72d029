// Issue #8, item 2: SIGTERM while a worker process is busy with several jobs and more wait.
// test/process/procfile.test.ts shows the same for one job at a time; here the worker is full
// (every slot busy, a queue behind it), as a deploy finds it. The jobs are send-email jobs made
// slow by the test SMTP server, which answers every DATA after `delayMs`.
import assert from 'node:assert/strict';
import { sharedRedisUrl } from '../harness/global.js';
import { stoppedIn } from '../harness/procfile.js';
import { logged, startStack, type Stack } from '../harness/stack.js';

const CONCURRENCY = 4;

describe('reliability: SIGTERM during work', function () {
  this.timeout(90_000);
  let stack: Stack;

  before(async () => {
    stack = await startStack(sharedRedisUrl(), { WORKER_CONCURRENCY: String(CONCURRENCY) });
    await stack.startWeb();
  });
  after(() => stack.close());

  const enqueue = async (n: number, tag: string) => {
    const ids: string[] = [];
    for (let i = 0; i < n; i++) {
      const { status, id } = await stack.signup(`${tag}${i}@example.com`);
      assert.equal(status, 202);
      ids.push(id!);
    }
    return ids;
  };
  const startedAfterShutdown = (lines: { msg?: string }[]) =>
    lines
      .slice(lines.findIndex((l) => l.msg === 'shutting down'))
      .filter((l) => l.msg === 'job started');

  it('(a) when the jobs are shorter than the shutdown timeout, then no job starts after the signal, every active one completes, and it exits 0 within the timeout', async () => {
    const timeoutMs = 10_000;
    stack.smtp.delayMs = 1_000;
    const ids = await enqueue(CONCURRENCY * 3, 'short');
    const worker = await stack.startWorker({ SHUTDOWN_TIMEOUT_MS: String(timeoutMs) });
    await worker.waitForLog(
      () => logged(worker.lines, 'job started', 'send-email').length >= CONCURRENCY,
    );
    assert.equal(await worker.stop('SIGTERM'), 0);
    const tookMs = await stoppedIn(worker);
    assert.ok(tookMs < timeoutMs, `exited in ${tookMs} ms`);

    assert.deepEqual(startedAfterShutdown(worker.lines), [], 'no job started after the signal');
    const started = logged(worker.lines, 'job started', 'send-email');
    assert.ok(started.length >= CONCURRENCY && started.length < ids.length);
    assert.deepEqual(
      logged(worker.lines, 'job completed', 'send-email').sort(),
      [...started].sort(),
    );
    for (const id of ids) {
      const { state, attempts } = await stack.status(id);
      if (started.includes(id)) assert.equal(state, 'completed');
      else assert.deepEqual([state, attempts], ['waiting', 0], 'the rest were never touched');
    }

    // The next worker takes the rest, and nothing runs twice.
    stack.smtp.delayMs = 0;
    const next = await stack.startWorker();
    await stack.allCompleted(ids, 20_000);
    const reran = logged(next.lines, 'job started', 'send-email').filter((id) =>
      started.includes(id),
    );
    assert.deepEqual(reran, []);
    await next.stop('SIGTERM');
  });

  it('(b) when the jobs outlast the shutdown timeout, then the process exits by itself within the timeout, and the next worker runs each unfinished job once, to completion', async () => {
    const timeoutMs = 2_000;
    stack.smtp.delayMs = 8_000;
    const ids = await enqueue(CONCURRENCY, 'long');
    const worker = await stack.startWorker({ SHUTDOWN_TIMEOUT_MS: String(timeoutMs) });
    await worker.waitForLog(
      () => logged(worker.lines, 'job started', 'send-email').length === CONCURRENCY,
    );
    // Exit code 0: it finished before its own hard deadline (which exits 1).
    assert.equal(await worker.stop('SIGTERM'), 0);
    const tookMs = await stoppedIn(worker);
    assert.ok(tookMs < timeoutMs, `exited in ${tookMs} ms`);
    assert.deepEqual(
      logged(worker.lines, 'job interrupted by shutdown, put back in its queue').sort(),
      [...ids].sort(),
    );
    for (const id of ids) assert.equal((await stack.status(id)).state, 'waiting');

    stack.smtp.delayMs = 0;
    const next = await stack.startWorker();
    await stack.allCompleted(ids, 20_000);
    assert.deepEqual(
      logged(next.lines, 'job started', 'send-email').sort(),
      [...ids].sort(),
      'each once',
    );
    assert.deepEqual(logged(next.lines, 'job completed', 'send-email').sort(), [...ids].sort());
    // Every job's mail went out (an interrupted run may also have reached the server: same
    // Message-ID, so it is the same letter).
    const messageIds = new Set(stack.smtp.received.map((m) => m.mail.messageId));
    for (const id of ids) assert.ok(messageIds.has(`<${id}@offload.localhost>`));
    await next.stop('SIGTERM');
  });
});
