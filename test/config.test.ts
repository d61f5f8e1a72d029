import assert from 'node:assert/strict';
import { ConfigError, DEV_SIGNING_SECRET, loadConfig, PRODUCTION_DEFAULTS } from '../src/config.js';

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

describe('loadConfig: per-queue settings', () => {
  it('when QUEUE_CONCURRENCY and QUEUE_RATE_LIMIT are given, then they parse into numbers and rates per queue', () => {
    const config = loadConfig({
      QUEUE_CONCURRENCY: 'media=2, reports=1',
      QUEUE_RATE_LIMIT: 'mail=10/s,webhooks=600/min,slow=5/2s,burst=3/250ms',
      RESULT_TTL: '3600',
    });
    assert.deepEqual(config.QUEUE_CONCURRENCY, { media: 2, reports: 1 });
    assert.deepEqual(config.QUEUE_RATE_LIMIT, {
      mail: { max: 10, durationMs: 1_000 },
      webhooks: { max: 600, durationMs: 60_000 },
      slow: { max: 5, durationMs: 2_000 },
      burst: { max: 3, durationMs: 250 },
    });
    assert.equal(config.RESULT_TTL, 3600);
    assert.equal(config.FAILED_TTL, 7 * 24 * 3600);
    // media has a default of its own (memory: see DEFAULT_QUEUE_CONCURRENCY), which can be set.
    assert.deepEqual(loadConfig({}).QUEUE_CONCURRENCY, { media: 2 });
    assert.deepEqual(loadConfig({ QUEUE_CONCURRENCY: 'mail=9' }).QUEUE_CONCURRENCY, {
      media: 2,
      mail: 9,
    });
  });

  it('when a per-queue value is malformed, then the key is named with an example', () => {
    for (const [key, value] of [
      ['QUEUE_CONCURRENCY', 'media'],
      ['QUEUE_CONCURRENCY', 'media=0'],
      ['QUEUE_CONCURRENCY', 'Media=2'],
      ['QUEUE_RATE_LIMIT', 'mail=10'],
      ['QUEUE_RATE_LIMIT', 'mail=0/s'],
      ['QUEUE_RATE_LIMIT', 'mail=10/week'],
    ] as const) {
      assert.throws(
        () => loadConfig({ [key]: value }),
        (error: unknown) =>
          error instanceof ConfigError &&
          error.problems.length === 1 &&
          (error.problems[0] ?? '').startsWith(`${key}:`),
        `${key}=${value}`,
      );
    }
  });
});

describe('loadConfig in production mode (NODE_ENV=production)', () => {
  const production = { NODE_ENV: 'production', SMTP_URL: 'smtp://mail.example.com:587' };
  /** The production-mode keys and the development surfaces they switch. */
  const surfaces = (config: ReturnType<typeof loadConfig>) => ({
    DEMO_PAGE: config.DEMO_PAGE,
    SYNC_MODE: config.SYNC_MODE,
    REPORT_SAMPLES: config.REPORT_SAMPLES,
    OUTBOX_PAGE: config.OUTBOX_PAGE,
    MAIL_OUTBOX: config.MAIL_OUTBOX,
    REDIS_PREFLIGHT_STRICT: config.REDIS_PREFLIGHT_STRICT,
  });

  it('when NODE_ENV is unset or anything but production, then the development surfaces are on and the preflight lenient', () => {
    for (const env of [{}, { NODE_ENV: 'development' }, { NODE_ENV: 'test' }]) {
      assert.deepEqual(surfaces(loadConfig(env)), {
        DEMO_PAGE: true,
        SYNC_MODE: true,
        REPORT_SAMPLES: true,
        OUTBOX_PAGE: 'public',
        MAIL_OUTBOX: true,
        REDIS_PREFLIGHT_STRICT: false,
      });
    }
  });

  it('when NODE_ENV=production, then every development surface is off and the preflight strict', () => {
    assert.deepEqual(surfaces(loadConfig(production)), {
      DEMO_PAGE: false,
      SYNC_MODE: false,
      REPORT_SAMPLES: false,
      OUTBOX_PAGE: 'off',
      MAIL_OUTBOX: false,
      REDIS_PREFLIGHT_STRICT: true,
    });
  });

  it('when NODE_ENV=production, then only the defaults of the production keys change', () => {
    const development = loadConfig({ SMTP_URL: production.SMTP_URL });
    const prod = loadConfig(production);
    const changed = Object.keys(prod).filter(
      (key) =>
        JSON.stringify(prod[key as keyof typeof prod]) !==
        JSON.stringify(development[key as keyof typeof development]),
    );
    assert.deepEqual(changed.sort(), Object.keys(PRODUCTION_DEFAULTS).sort());
  });

  it('when a production key is set, then it wins over the production default', () => {
    const config = loadConfig({
      ...production,
      DEMO_PAGE: 'true',
      SYNC_MODE: 'true',
      REPORT_SAMPLES: 'true',
      OUTBOX_PAGE: 'admin',
      ADMIN_PASSWORD: 'a-long-admin-password',
      MAIL_OUTBOX: 'true',
      REDIS_PREFLIGHT_STRICT: 'false',
    });
    assert.deepEqual(surfaces(config), {
      DEMO_PAGE: true,
      SYNC_MODE: true,
      REPORT_SAMPLES: true,
      OUTBOX_PAGE: 'admin',
      MAIL_OUTBOX: true,
      REDIS_PREFLIGHT_STRICT: false,
    });
  });

  it('when NODE_ENV=production and SMTP_URL is unset, then it refuses, naming SMTP_URL and the switch that accepts file mail', () => {
    assert.throws(
      () => loadConfig({ NODE_ENV: 'production' }),
      (error: unknown) =>
        error instanceof ConfigError &&
        /^SMTP_URL: unset.*MAIL_OUTBOX=true/.test(error.problems.join('\n')),
    );
    assert.equal(loadConfig({ NODE_ENV: 'production', MAIL_OUTBOX: 'true' }).SMTP_URL, undefined);
  });

  it('when NODE_ENV=production and the outbox page is public, then it refuses; admin needs ADMIN_PASSWORD anywhere', () => {
    assert.throws(
      () => loadConfig({ ...production, OUTBOX_PAGE: 'public' }),
      /OUTBOX_PAGE: public is refused with NODE_ENV=production/,
    );
    assert.throws(
      () => loadConfig({ OUTBOX_PAGE: 'admin' }),
      /OUTBOX_PAGE: admin needs ADMIN_PASSWORD/,
    );
    assert.equal(loadConfig({ OUTBOX_PAGE: 'public' }).OUTBOX_PAGE, 'public');
  });

  it('when LOG_FORMAT is not given, then logs are JSON in every mode', () => {
    assert.equal(loadConfig({}).LOG_FORMAT, 'json');
    assert.equal(loadConfig(production).LOG_FORMAT, 'json');
    assert.throws(() => loadConfig({ LOG_FORMAT: 'colour' }), /LOG_FORMAT/);
  });
});
