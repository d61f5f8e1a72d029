import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { createLogger } from '../src/logger.js';
import { inspectRedis, judgeRedis, preflightOnConnect } from '../src/redis/preflight.js';
import { createProducerConnection } from '../src/redis/connections.js';
import { sharedRedisUrl } from './harness/global.js';
import { freePort } from './harness/ports.js';
import { startRedis, type PrivateRedis } from './harness/redis.js';

const log = createLogger('silent', 'test');
const info = (fields: Record<string, string>) => new Map(Object.entries(fields));

/** A connected producer connection (it fails fast, so wait for it). */
async function connect(url: string, verify = true): Promise<Redis> {
  const redis = createProducerConnection(url, log, { verify });
  try {
    await new Promise<void>((resolve, reject) => {
      redis.once('ready', resolve);
      redis.once('error', reject);
    });
  } catch (error) {
    redis.disconnect(); // or it reconnects forever
    throw error;
  }
  return redis;
}

describe('Redis preflight', () => {
  it('when Redis is older than 6.2, then that is a problem (the process refuses to run)', () => {
    const old = judgeRedis(
      info({ redis_version: '6.0.16', maxmemory_policy: 'noeviction', aof_enabled: '1' }),
      undefined,
      { strict: false },
    );
    assert.match(old.problems.join(), /version 6\.0\.16 is older than 6\.2\.0/);
    const fine = judgeRedis(
      info({ redis_version: '6.2.0', maxmemory_policy: 'noeviction', aof_enabled: '1' }),
      undefined,
      { strict: false },
    );
    assert.deepEqual([fine.problems, fine.warnings], [[], []]);
  });

  it('when the test Redis (noeviction, AOF) is inspected, then it passes without a warning', async () => {
    const redis = await connect(sharedRedisUrl());
    try {
      const findings = await inspectRedis(redis, { strict: true });
      assert.deepEqual([findings.problems, findings.warnings], [[], []]);
      assert.equal(findings.maxmemoryPolicy, 'noeviction');
      assert.equal(findings.persistence, 'aof');
      assert.match(findings.version ?? '', /^\d+\.\d+\.\d+/);
    } finally {
      redis.disconnect();
    }
  });

  describe('when Redis may evict keys and persists nothing', () => {
    let evicting: PrivateRedis;
    let redis: Redis;
    before(async () => {
      evicting = await startRedis(['--maxmemory-policy', 'allkeys-lru', '--appendonly', 'no']);
      redis = await connect(evicting.url);
    });
    after(async () => {
      redis.disconnect();
      await evicting.destroy();
    });

    it('then both are loud warnings', async () => {
      const findings = await inspectRedis(redis, { strict: false });
      assert.deepEqual(findings.problems, []);
      assert.equal(findings.persistence, 'none');
      assert.match(findings.warnings.join('\n'), /maxmemory-policy is allkeys-lru/);
      assert.match(findings.warnings.join('\n'), /persistence is off/);
    });

    it('then with REDIS_PREFLIGHT_STRICT the eviction policy makes the process refuse to run', async () => {
      const findings = await inspectRedis(redis, { strict: true });
      assert.match(findings.problems.join(), /maxmemory-policy is allkeys-lru/);
      // What the entry points do: refuse() is where they exit.
      await new Promise<void>((resolve) => {
        preflightOnConnect(redis, { strict: true, log, refuse: resolve });
      });
    });
  });

  describe('when Redis speaks TLS with a self-signed certificate (rediss://)', function () {
    this.timeout(30_000);
    let tls: PrivateRedis | undefined;
    let url = '';
    let certDir = '';
    before(async function () {
      certDir = await mkdtemp(join(tmpdir(), 'offload-tls-'));
      const made = spawnSync('openssl', [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=localhost',
        '-keyout',
        join(certDir, 'key.pem'),
        '-out',
        join(certDir, 'cert.pem'),
      ]);
      if (made.status !== 0) {
        if (process.env.CI === 'true') throw new Error('openssl is needed for the TLS test in CI');
        console.log(
          '      skipped: openssl is not on PATH, so no self-signed certificate can be made',
        );
        this.skip();
      }
      const port = await freePort();
      tls = await startRedis([
        '--tls-port',
        String(port),
        '--tls-cert-file',
        join(certDir, 'cert.pem'),
        '--tls-key-file',
        join(certDir, 'key.pem'),
        '--tls-auth-clients',
        'no',
      ]);
      url = `rediss://127.0.0.1:${port}`;
    });
    after(async () => {
      await tls?.destroy();
      if (certDir) await rm(certDir, { recursive: true, force: true });
    });

    it('then by default the certificate is refused', async () => {
      await assert.rejects(connect(url), /self[- ]signed certificate/);
    });

    it('then with REDIS_TLS_VERIFY=false it connects, and the preflight runs over TLS', async () => {
      const redis = await connect(url, false);
      try {
        const findings = await inspectRedis(redis, { strict: false });
        assert.deepEqual(findings.problems, []);
      } finally {
        redis.disconnect();
      }
    });
  });
});
