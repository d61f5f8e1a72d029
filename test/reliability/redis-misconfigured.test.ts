// Issue #8, item 4: a Redis that may evict jobs, and a Redis that is full. The preflight's
// verdicts are unit-tested in test/preflight.test.ts and through /readyz in
// test/routes/health.test.ts; this runs the real `web` and `worker` processes against such a
// Redis.
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { eventually } from '../harness/app.js';
import { startProcess } from '../harness/procfile.js';
import { startRedis, type PrivateRedis } from '../harness/redis.js';
import { startStack, type Stack } from '../harness/stack.js';

describe('reliability: Redis misconfigured or full', function () {
  this.timeout(90_000);

  describe('with maxmemory-policy allkeys-lru', () => {
    let redis: PrivateRedis;
    let stack: Stack;
    before(async () => {
      redis = await startRedis(['--maxmemory-policy', 'allkeys-lru']);
      stack = await startStack(redis.url);
    });
    after(async () => {
      await stack.close();
      await redis.destroy();
    });

    it('when the worker starts, then it warns loudly and runs; web is ready with the warning', async () => {
      const worker = await stack.startWorker();
      const warning = await worker.waitForLog((l) =>
        /maxmemory-policy is allkeys-lru/.test(l.msg ?? ''),
      );
      assert.equal(warning.level, 40, 'a warning');
      await stack.startWeb();
      const res = await fetch(`${stack.base}/readyz`);
      assert.equal(res.status, 200);
      const body = (await res.json()) as { warnings: string[] };
      assert.match(body.warnings.join('\n'), /allkeys-lru/);
    });

    it('when REDIS_PREFLIGHT_STRICT=true, then the worker refuses to run (exit 1, saying why)', async () => {
      const strict = { REDIS_PREFLIGHT_STRICT: 'true' };
      const worker = startProcess('worker', {
        ...stack.env,
        ...strict,
      });
      stack.workers.push(worker);
      assert.equal(await worker.exited, 1);
      assert.ok(
        worker.lines.some(
          (l) =>
            l.msg === 'redis preflight failed: refusing to run' &&
            JSON.stringify(l).includes('allkeys-lru'),
        ),
      );
    });
  });

  describe('at maxmemory under noeviction', () => {
    let redis: PrivateRedis;
    let stack: Stack;
    let admin: Redis;
    before(async () => {
      redis = await startRedis();
      admin = new Redis(redis.url);
      stack = await startStack(redis.url);
      await stack.startWeb();
      await stack.startWorker();
    });
    after(async () => {
      await admin.config('SET', 'maxmemory', '0').catch(() => undefined);
      admin.disconnect();
      await stack.close();
      await redis.destroy();
    });

    it('when Redis is full, then enqueues answer 503, /readyz says Redis is out of memory and the log carries the OOM error Redis gave, nothing crashes; when memory frees, then it all recovers and every accepted job completes', async () => {
      const before = await stack.signup('full-before@example.com');
      assert.equal(before.status, 202);
      await stack.allCompleted([before.id!], 15_000);

      // Full: any maxmemory below what is used makes Redis refuse every write (noeviction).
      await admin.config('SET', 'maxmemory', '1');
      for (let i = 0; i < 5; i++) {
        const full = await stack.signup(`full${i}@example.com`);
        assert.equal(full.status, 503, `enqueue into a full Redis answered ${full.status}`);
        assert.ok(full.ms < 1_000);
      }
      const status = await fetch(`${stack.base}/jobs/${before.id}`);
      assert.equal(status.status, 200, 'reads still work');
      // An operator sees why: /readyz says it in words, and the 503's log line carries Redis's
      // own error.
      const readyz = await fetch(`${stack.base}/readyz`);
      assert.equal(readyz.status, 503);
      const { problems } = (await readyz.json()) as { problems: string[] };
      assert.match(
        problems.join('\n'),
        /^Redis is out of memory \([\d.]+ MB used of maxmemory 0\.0 MB\): every enqueue fails/m,
      );
      const logged = await stack.web!.waitForLog((l) => l.msg === 'service unavailable');
      assert.match(String(logged.redis), /^OOM command not allowed when used memory > 'maxmemory'/);

      await admin.config('SET', 'maxmemory', '0');
      const after = await eventually(async () => {
        const res = await stack.signup('full-after@example.com');
        return res.status === 202 ? res : undefined;
      }, 10_000);
      await stack.allCompleted([after.id!], 15_000);
      assert.equal(stack.web!.child.exitCode, null, 'web never crashed');
      assert.equal(stack.workers[0]!.child.exitCode, null, 'the worker never crashed');
    });
  });
});
