import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { loadConfig } from '../../src/config.js';
import { DEV_DEFAULTS, devEnvironment } from '../../src/dev/env.js';

describe('the development environment (.env)', () => {
  it('when a key is in .env and in the real environment, then the real environment wins', () => {
    const env = devEnvironment({ PORT: '4000' }, 'PORT=5000\nLOG_LEVEL=debug\n');
    assert.equal(env.PORT, '4000');
    assert.equal(env.LOG_LEVEL, 'debug');
  });

  it('when .env sets a development default, then .env wins over the default', () => {
    assert.equal(devEnvironment({}, undefined).OUTBOX_DELAY_MS, DEV_DEFAULTS.OUTBOX_DELAY_MS);
    assert.equal(devEnvironment({}, 'OUTBOX_DELAY_MS=0').OUTBOX_DELAY_MS, '0');
  });

  it('when .env has quotes, comments and export-less dotenv syntax, then values come out plain', () => {
    const env = devEnvironment(
      {},
      '# a comment\nMAIL_FROM="Offload <hi@example.com>"\nA=1 # trailing\n',
    );
    assert.equal(env.MAIL_FROM, 'Offload <hi@example.com>');
    assert.equal(env.A, '1');
  });

  it('when .env is a copy of .env.example, then loadConfig accepts it and dev keeps its private Redis', () => {
    const env = devEnvironment({}, readFileSync('.env.example', 'utf8'));
    assert.doesNotThrow(() => loadConfig(env));
    assert.ok(!env.REDIS_URL, 'REDIS_URL is left unset, so npm run dev starts its own Redis');
  });
});
