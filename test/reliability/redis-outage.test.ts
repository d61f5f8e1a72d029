// Issue #8, item 3: Redis goes away for 10 s while requests keep arriving, then comes back from
// its AOF. 10 s is longer than BullMQ's 5 s drain delay: the trigger of BullMQ #4585, workers
// that silently stopped consuming after an outage. Web and worker are never restarted.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { eventually } from '../harness/app.js';
import { startRedis, type PrivateRedis } from '../harness/redis.js';
import { logged, startStack, type Stack } from '../harness/stack.js';

const OUTAGE_MS = 10_000;

interface Answer {
  at: number;
  status: number;
  ms: number;
  id?: string;
}

describe('reliability: a Redis outage', function () {
  this.timeout(120_000);
  let redis: PrivateRedis;
  let stack: Stack;

  before(async () => {
    redis = await startRedis(); // its own: the shared one must stay up for the other tests
    // One job at a time, each slow (the SMTP server answers after 200 ms): a backlog builds up,
    // so jobs are still waiting in Redis when it stops, and one is active in the worker.
    stack = await startStack(redis.url, { WORKER_CONCURRENCY: '1' });
    await stack.startWeb();
    await stack.startWorker();
  });
  after(async () => {
    await stack.close();
    await redis.destroy();
  });

  it('when Redis stops for 10 s and restarts from its AOF, then enqueues answer 503 within 1 s and /readyz says why, and afterwards, without a restart, enqueues succeed, the worker resumes within 10 s, and every accepted job completes', async () => {
    const [web, worker] = [stack.web!, stack.workers[0]!];
    // A client posting signups one after another, through the whole test.
    const answers: Answer[] = [];
    const client = { posting: true };
    const posting = (async () => {
      for (let i = 0; client.posting; i++) {
        const at = Date.now();
        const { status, ms, id } = await stack.signup(`out${i}@example.com`);
        answers.push({ at, status, ms, id });
        await sleep(50);
      }
    })();
    const accepted = () => answers.filter((a) => a.status === 202).map((a) => a.id!);

    stack.smtp.delayMs = 200;
    await eventually(() => (accepted().length >= 15 ? true : undefined), 10_000, '15 accepted');
    await redis.stop(); // SHUTDOWN: the AOF is flushed, as when a managed Redis restarts
    const down = Date.now();
    const acceptedBefore = accepted();
    const finished = new Set(logged(worker.lines, 'job completed', 'send-email'));
    const backlog = acceptedBefore.filter((id) => !finished.has(id)).length;
    assert.ok(backlog >= 3, `${backlog} accepted jobs unfinished when Redis stopped`);

    const readyz = await eventually(async () => {
      const res = await fetch(`${stack.base}/readyz`);
      return res.status === 503 ? ((await res.json()) as { problems: string[] }) : undefined;
    }, 5_000);
    assert.match(readyz.problems.join('\n'), /redis/i, 'the reason names Redis');
    // Requests sent once the outage shows. One sent just before it may have had its add written
    // as Redis stopped: that one waits to be settled (up to SETTLE_WAIT_MS) before its 503.
    const seen = Date.now();
    await sleep(Math.max(0, OUTAGE_MS - (Date.now() - down))); // the outage itself
    const during = answers.filter((answer) => answer.at >= seen);
    assert.ok(during.length >= 5, `${during.length} requests during the outage`);
    for (const answer of during) {
      assert.equal(answer.status, 503);
      assert.ok(answer.ms < 1_000, `a 503 took ${answer.ms.toFixed(0)} ms`);
    }

    await redis.start();
    const up = Date.now();
    stack.smtp.delayMs = 0;
    // The worker consumes again within 10 s of Redis coming back: its first completed job...
    const resumed = await worker.waitForLog(
      (l) => l.msg === 'job completed' && Number(l.time) >= up,
      10_000,
    );
    const resumedMs = Number(resumed.time) - up;
    // ...and enqueues succeed again.
    await eventually(
      () => answers.find((a) => a.at >= up && a.status === 202),
      10_000,
      'a 202 after the restart',
    );
    client.posting = false;
    await posting;
    const ready = await fetch(`${stack.base}/readyz`);
    assert.equal(ready.status, 200);

    // Nothing accepted is lost: before, during (none) and after the outage.
    assert.ok(acceptedBefore.every((id) => accepted().includes(id)));
    await stack.allCompleted(accepted(), 30_000);
    assert.equal(web.child.exitCode, null, 'web was never restarted');
    assert.equal(worker.child.exitCode, null, 'the worker was never restarted');
    assert.equal(stack.workers.length, 1);
    console.log(
      `      ${acceptedBefore.length} accepted before (${backlog} unfinished), ${during.length} answered 503 during (slowest ${Math.max(...during.map((a) => a.ms)).toFixed(0)} ms), worker resumed ${resumedMs} ms after Redis was back; ${accepted().length} accepted in all, all completed`,
    );
  });
});
