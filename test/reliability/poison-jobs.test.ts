// Issue #8, item 5: poison jobs end, in a real worker process, after exactly their attempts.
// The runtime's semantics (attempts, backoff, PermanentError) are unit-tested against real
// Redis in test/offload/runtime.test.ts; this adds the whole path: POST /webhooks on `web`, the
// app's own call-webhook job in a `worker` process, and a receiver that records every call
// (keyed by the Idempotency-Key the job sends: its id) and its arrival time, so attempts and
// backoff are measured where the effect lands. call-webhook retries 5xx: 5 attempts,
// exponential from 1 s, jitter 0.2 (each delay shortened by up to 20 %); other 4xx fail at once.
import assert from 'node:assert/strict';
import { CALL_WEBHOOK_RETRY } from '../../jobs/call-webhook.js';
import { sharedRedisUrl } from '../harness/global.js';
import { startReceiver, type Receiver } from '../harness/receiver.js';
import { startStack, type Stack } from '../harness/stack.js';

/** How late a retry may be on a loaded machine (delayed jobs are promoted by the worker). */
const SLACK_MS = 2_000;

describe('reliability: poison jobs (a real worker process)', function () {
  this.timeout(60_000);
  let stack: Stack;
  let receiver: Receiver;

  before(async () => {
    receiver = await startReceiver();
    stack = await startStack(sharedRedisUrl(), { WEBHOOK_ALLOW_PRIVATE: 'true' });
    await stack.startWeb();
    await stack.startWorker();
  });
  after(async () => {
    await stack.close();
    await receiver.close();
  });

  const post = async (path: string) => {
    const res = await fetch(`${stack.base}/webhooks`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ url: receiver.url(path), event: 'poison.test', payload: { path } }),
    });
    assert.equal(res.status, 202);
    return ((await res.json()) as { id: string }).id;
  };
  const failed = (id: string, timeoutMs: number) =>
    stack.workers[0]!.waitForLog(
      (l) => l.msg === 'job failed for good: dead-lettered' && l.jobId === id,
      timeoutMs,
    );
  /** Nothing of the webhooks queue is waiting, delayed or active: no further run is scheduled. */
  const nothingScheduled = async () => {
    const counts = await stack.counts(['webhooks']);
    assert.deepEqual(
      [counts.waiting, counts.delayed, counts.active, counts.prioritized],
      [0, 0, 0, 0],
      JSON.stringify(counts),
    );
  };

  it('when a job always fails (the receiver answers 500), then it runs exactly its 5 attempts, each retry after the configured backoff, ends failed, and nothing runs it again', async () => {
    receiver.script('/always-500', [{ status: 500 }]);
    const id = await post('/always-500');
    const { attempts, delayMs, jitter = 0 } = CALL_WEBHOOK_RETRY;
    await failed(id, 40_000);

    const calls = receiver.received('/always-500');
    assert.equal(calls.length, attempts, 'exactly its attempts');
    for (const call of calls) assert.equal(call.headers['idempotency-key'], id);
    const gaps = calls.slice(1).map((call, i) => call.at - calls[i]!.at);
    gaps.forEach((gap, i) => {
      const full = delayMs * 2 ** i; // 1 s, 2 s, 4 s, 8 s
      assert.ok(
        gap >= full * (1 - jitter) - 50 && gap <= full + SLACK_MS,
        `retry ${i + 1} came after ${gap} ms; the backoff is ${full * (1 - jitter)}..${full} ms`,
      );
    });
    const status = await stack.status(id);
    assert.deepEqual([status.state, status.attempts], ['failed', attempts]);
    await nothingScheduled();
    assert.equal(receiver.received('/always-500').length, attempts);
    console.log(`      retries came after ${gaps.join(', ')} ms`);
  });

  it('when a job fails permanently (the receiver answers 400), then it ends failed after one attempt and nothing runs it again', async () => {
    receiver.script('/bad-request', [{ status: 400 }]);
    const id = await post('/bad-request');
    await failed(id, 10_000);
    const status = await stack.status(id);
    assert.deepEqual([status.state, status.attempts], ['failed', 1]);
    await nothingScheduled();
    assert.equal(receiver.received('/bad-request').length, 1);
  });
});
