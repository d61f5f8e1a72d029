import assert from 'node:assert/strict';
import { ConfigError, DEV_SIGNING_SECRET, loadConfig } from '../src/config.js';

describe('loadConfig', () => {
  it('when nothing is set, then every key has its documented default', () => {
    const config = loadConfig({});
    assert.equal(config.PORT, 3000);
    assert.equal(config.REDIS_URL, 'redis://127.0.0.1:6379');
    assert.equal(config.OFFLOAD_MODE, 'queue');
    assert.equal(config.WORKER_QUEUES, '*');
    assert.equal(config.SHUTDOWN_TIMEOUT_MS, 25_000);
    assert.equal(config.SMTP_URL, undefined);
    assert.equal(config.PUBLIC_URL, 'http://localhost:3000');
  });

  it('when values are given, then they are parsed into their types', () => {
    const config = loadConfig({
      PORT: '8080',
      WORKER_QUEUES: 'mail, media',
      WORKER_CONCURRENCY: '12',
      OFFLOAD_MODE: 'embedded',
      PUBLIC_URL: 'https://example.com/',
      SMTP_URL: '',
    });
    assert.equal(config.PORT, 8080);
    assert.deepEqual(config.WORKER_QUEUES, ['mail', 'media']);
    assert.equal(config.WORKER_CONCURRENCY, 12);
    assert.equal(config.OFFLOAD_MODE, 'embedded');
    assert.equal(config.PUBLIC_URL, 'https://example.com', 'trailing slash trimmed');
    assert.equal(config.SMTP_URL, undefined, 'an empty value means unset');
  });

  it('when several keys are bad, then the error names every one of them', () => {
    assert.throws(
      () =>
        loadConfig({
          PORT: 'eighty',
          REDIS_URL: 'http://localhost',
          OFFLOAD_MODE: 'eager',
          SHUTDOWN_TIMEOUT_MS: '60000',
          WORKER_QUEUES: ' , ',
        }),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        const named = error.problems.map((p) => p.split(':')[0]);
        assert.deepEqual(named.sort(), [
          'OFFLOAD_MODE',
          'PORT',
          'REDIS_URL',
          'SHUTDOWN_TIMEOUT_MS',
          'WORKER_QUEUES',
        ]);
        return true;
      },
    );
  });

  it('when loaded, then the result is frozen and unknown keys are ignored', () => {
    const config = loadConfig({ HOME: '/root', PORT: '1' });
    assert.ok(Object.isFrozen(config));
    assert.ok(!('HOME' in config));
    assert.throws(() => {
      (config as { PORT: number }).PORT = 2;
    }, TypeError);
  });

  it('when storage keys are unset, then files go to .data/storage, signed with the development secret', () => {
    const config = loadConfig({});
    assert.equal(config.STORAGE_DIR, '.data/storage');
    assert.equal(config.SIGNING_SECRET, DEV_SIGNING_SECRET);
    assert.ok(DEV_SIGNING_SECRET.length >= 32, 'the fallback passes its own rule');
  });

  it('when SIGNING_SECRET is set, then it is used, and one shorter than 32 characters is refused', () => {
    const secret = 'a'.repeat(32);
    assert.equal(loadConfig({ SIGNING_SECRET: secret }).SIGNING_SECRET, secret);
    assert.equal(loadConfig({ STORAGE_DIR: '/srv/files' }).STORAGE_DIR, '/srv/files');
    assert.throws(
      () => loadConfig({ SIGNING_SECRET: 'a'.repeat(31) }),
      (error: unknown) =>
        error instanceof ConfigError &&
        error.problems.length === 1 &&
        /^SIGNING_SECRET: must be at least 32/.test(error.problems[0] ?? ''),
    );
  });
});
