import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../harness/ports.js';
import { startProcess } from '../harness/procfile.js';
import { startRedis, type PrivateRedis } from '../harness/redis.js';

describe('the Redis preflight at process start', function () {
  this.timeout(60_000);
  let evicting: PrivateRedis;
  let dirs: Record<string, string>;
  before(async () => {
    evicting = await startRedis(['--maxmemory-policy', 'allkeys-lru']);
    // Never the developer's .data/: the worker's cleanup job runs on start.
    const dir = await mkdtemp(join(tmpdir(), 'offload-preflight-'));
    dirs = { STORAGE_DIR: join(dir, 'storage'), OUTBOX_DIR: join(dir, 'outbox') };
  });
  after(() => evicting.destroy());

  for (const type of ['web', 'worker']) {
    it(`when Redis may evict jobs and REDIS_PREFLIGHT_STRICT=true, then ${type} refuses to run (exit 1, saying why)`, async () => {
      const proc = startProcess(type, {
        ...dirs,
        REDIS_URL: evicting.url,
        REDIS_PREFLIGHT_STRICT: 'true',
        PORT: String(await freePort()),
        LOG_LEVEL: 'info',
      });
      try {
        const line = await proc.waitForLog(
          (l) => l.msg === 'redis preflight failed: refusing to run',
        );
        assert.match(JSON.stringify(line.problems), /maxmemory-policy is allkeys-lru/);
        assert.equal(await proc.exited, 1);
      } finally {
        await proc.stop('SIGKILL');
      }
    });
  }

  for (const type of ['web', 'worker']) {
    it(`when NODE_ENV=production and Redis may evict jobs, then ${type} refuses by default, naming the policy and the fix`, async () => {
      const proc = startProcess(type, {
        ...dirs,
        NODE_ENV: 'production',
        SMTP_URL: 'smtp://127.0.0.1:2525', // required in production; nothing is sent here
        REDIS_URL: evicting.url,
        PORT: String(await freePort()),
        LOG_LEVEL: 'info',
      });
      try {
        const line = await proc.waitForLog(
          (l) => l.msg === 'redis preflight failed: refusing to run',
        );
        assert.match(
          JSON.stringify(line.problems),
          /maxmemory-policy is allkeys-lru.*CONFIG SET maxmemory-policy noeviction.*REDIS_PREFLIGHT_STRICT=false/,
        );
        assert.equal(await proc.exited, 1);
      } finally {
        await proc.stop('SIGKILL');
      }
    });
  }

  it('when NODE_ENV=production and REDIS_PREFLIGHT_STRICT=false, then the worker runs on an evicting Redis and warns', async () => {
    const proc = startProcess('worker', {
      ...dirs,
      NODE_ENV: 'production',
      SMTP_URL: 'smtp://127.0.0.1:2525',
      REDIS_PREFLIGHT_STRICT: 'false',
      REDIS_URL: evicting.url,
      LOG_LEVEL: 'info',
    });
    try {
      const warning = await proc.waitForLog((l) =>
        /maxmemory-policy is allkeys-lru/.test(String(l.msg)),
      );
      assert.equal(warning.level, 40, 'a warning');
      await proc.waitForLog((l) => l.msg === 'redis preflight passed');
    } finally {
      await proc.stop('SIGKILL');
    }
  });

  it('when NODE_ENV=production and SMTP_URL is unset, then the worker refuses to start (exit 1), naming SMTP_URL and MAIL_OUTBOX', async () => {
    const proc = startProcess('worker', {
      ...dirs,
      NODE_ENV: 'production',
      SMTP_URL: '',
      REDIS_URL: evicting.url,
      LOG_LEVEL: 'info',
    });
    try {
      const line = await proc.waitForLog((l) => /SMTP_URL: unset/.test(String(l.msg)));
      assert.match(String(line.msg), /MAIL_OUTBOX=true/);
      assert.equal(await proc.exited, 1);
    } finally {
      await proc.stop('SIGKILL');
    }
  });

  it('when the same Redis is used without strict, then the worker runs and warns loudly', async () => {
    const proc = startProcess('worker', {
      ...dirs,
      REDIS_URL: evicting.url,
      LOG_LEVEL: 'info',
    });
    try {
      const warning = await proc.waitForLog((l) =>
        /maxmemory-policy is allkeys-lru/.test(String(l.msg)),
      );
      assert.equal(warning.level, 40, 'a warning');
      await proc.waitForLog((l) => l.msg === 'redis preflight passed');
    } finally {
      await proc.stop('SIGKILL');
    }
  });
});
