import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import request from 'supertest';
import { registry } from '../../src/process/boot.js';
import { startHeartbeat } from '../../src/process/heartbeat.js';
import { createLogger } from '../../src/logger.js';
import type { Readiness } from '../../src/process/monitor.js';
import { createTestApp, eventually, type TestApp } from '../harness/app.js';
import { startRedis, type PrivateRedis } from '../harness/redis.js';

const log = createLogger('silent', 'test');

describe('GET /readyz', function () {
  this.timeout(30_000);
  let t: TestApp;
  afterEach(() => t.close());
  const readyz = async (status: number) =>
    (await request(t.app).get('/readyz').expect(status)).body as Readiness;

  it('when Redis is sane but no worker runs, then 200 with the Redis facts and a warning per queue', async () => {
    t = await createTestApp();
    const report = await readyz(200);
    assert.equal(report.ok, true);
    assert.equal(report.redis?.maxmemoryPolicy, 'noeviction');
    assert.equal(report.redis.persistence, 'aof');
    assert.deepEqual(report.problems, []);
    for (const queue of registry.queues) {
      assert.equal(report.workers?.[queue], 0, queue);
      assert.ok(
        report.warnings.some((w) => w.includes(`"${queue}"`)),
        `a warning names ${queue}`,
      );
    }
  });

  it('when a worker beats for some queues, then readiness counts it there until it stops', async () => {
    t = await createTestApp();
    const redis = new Redis(t.config.REDIS_URL);
    try {
      const heartbeat = startHeartbeat({
        redis,
        prefix: t.config.QUEUE_PREFIX,
        queues: ['mail'],
        log,
      });
      await heartbeat.first;
      const second = startHeartbeat({
        redis,
        prefix: t.config.QUEUE_PREFIX,
        queues: ['mail', 'media'],
        log,
      });
      await second.first;
      const beating = await readyz(200);
      assert.equal(beating.workers?.mail, 2);
      assert.equal(beating.workers.media, 1);
      assert.ok(!beating.warnings.some((w) => w.includes('"mail"')), 'no warning for mail');

      await Promise.all([heartbeat.stop(), second.stop()]);
      const stopped = await readyz(200);
      assert.equal(stopped.workers?.mail, 0, 'a stopped worker leaves at once, not after the TTL');
    } finally {
      redis.disconnect();
    }
  });

  describe('when Redis may evict jobs', () => {
    let evicting: PrivateRedis;
    before(async () => {
      evicting = await startRedis(['--maxmemory-policy', 'volatile-lru']);
    });
    after(() => evicting.destroy());

    const connected = () => eventually(() => (t.monitor.connected() ? true : undefined));

    it('then readiness warns, and stays 200', async () => {
      t = await createTestApp({ REDIS_URL: evicting.url });
      await connected();
      const report = await readyz(200);
      assert.match(report.warnings.join('\n'), /maxmemory-policy is volatile-lru/);
    });

    it('then with REDIS_PREFLIGHT_STRICT readiness is 503 naming the policy', async () => {
      t = await createTestApp({ REDIS_URL: evicting.url, REDIS_PREFLIGHT_STRICT: 'true' });
      await connected();
      const report = await readyz(503);
      assert.equal(report.ok, false);
      assert.match(report.problems.join(), /maxmemory-policy is volatile-lru/);
    });
  });

  it('when in inline mode, then it is ready without Redis', async () => {
    t = await createTestApp({ OFFLOAD_MODE: 'inline', REDIS_URL: 'redis://127.0.0.1:1' });
    assert.equal((await readyz(200)).mode, 'inline');
  });
});
