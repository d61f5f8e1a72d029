// app.json (the Heroku deploy) must stay true to the app: config vars the app reads, generated
// secrets the app accepts, a formation of the Procfile's processes. Heroku itself cannot be
// reached from here; this is what can be checked without it.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { loadConfig } from '../src/config.js';
import { readProcfile } from './harness/procfile.js';

interface AppJson {
  formation: Record<string, { quantity: number }>;
  addons: { plan: string; as?: string }[];
  env: Record<string, { value?: string; generator?: string; required?: boolean }>;
  buildpacks: { url: string }[];
}

const app = JSON.parse(readFileSync('app.json', 'utf8')) as AppJson;
/** Every key .env.example documents (the keys loadConfig reads). */
const documented = new Set(readFileSync('.env.example', 'utf8').match(/^[A-Z_0-9]+(?==)/gm));

describe('app.json (Heroku)', () => {
  it('when Heroku reads the formation, then it names exactly the Procfile processes, one of each', () => {
    // `release` is no formation: it runs once per deploy, before the new processes start.
    const scaled = [...readProcfile().keys()].filter((type) => type !== 'release');
    assert.deepEqual(Object.keys(app.formation).sort(), scaled.sort());
    for (const { quantity } of Object.values(app.formation)) assert.equal(quantity, 1);
  });

  it('when the Redis add-on is attached as REDIS, then it sets REDIS_URL, the key the app reads', () => {
    assert.deepEqual(app.addons[0], { plan: 'heroku-redis:mini', as: 'REDIS' });
    assert.equal(app.env.REDIS_URL, undefined, 'the add-on sets it, not the user');
  });

  it('when the Postgres add-on is attached as DATABASE, then it sets DATABASE_URL, and the release process migrates it', () => {
    assert.deepEqual(app.addons.slice(1), [
      { plan: 'heroku-postgresql:essential-0', as: 'DATABASE' },
    ]);
    assert.equal(app.env.DATABASE_URL, undefined, 'the add-on sets it, not the user');
    assert.ok(documented.has('DATABASE_URL'));
    assert.equal(readProcfile().get('release'), 'node dist/src/db/release.js');
  });

  it('when Heroku fills the config vars, then every one is a documented key and the app starts with them', () => {
    for (const key of Object.keys(app.env)) assert.ok(documented.has(key), `${key} is documented`);
    // Heroku's "secret" generator makes 64 hex characters; required values are the user's.
    const env: Record<string, string> = {
      REDIS_URL: 'rediss://:pw@ec2-1-2-3-4.compute.example.com:6380',
    };
    for (const [key, spec] of Object.entries(app.env)) {
      if (spec.generator === 'secret') env[key] = randomBytes(32).toString('hex');
      else if (spec.value !== undefined) env[key] = spec.value;
    }
    const required = {
      PUBLIC_URL: 'https://offload-demo.herokuapp.com',
      S3_BUCKET: 'offload-demo',
      AWS_ACCESS_KEY_ID: 'AKIAEXAMPLE',
      AWS_SECRET_ACCESS_KEY: 'secret-example',
      SMTP_URL: 'smtp://user:pass@smtp.example.com:587',
    };
    assert.deepEqual(
      Object.keys(app.env)
        .filter((key) => app.env[key]?.required)
        .sort(),
      Object.keys(required).sort(),
      'the values asked of the user',
    );
    Object.assign(env, required);
    const config = loadConfig(env);
    assert.equal(config.REDIS_TLS_VERIFY, false);
    assert.equal(config.SIGNING_SECRET.length, 64);
    assert.equal(config.S3_BUCKET, 'offload-demo');
  });

  it('when the demo deploy starts in production mode, then it shows the demo surfaces and keeps the production guards', () => {
    const env = Object.fromEntries(
      Object.entries(app.env).flatMap(([key, spec]) =>
        spec.value === undefined ? [] : [[key, spec.value]],
      ),
    );
    assert.equal(env.NODE_ENV, 'production');
    const config = loadConfig({ ...env, SMTP_URL: 'smtp://smtp.example.com:587' });
    assert.deepEqual(
      [config.DEMO_PAGE, config.SYNC_MODE, config.REPORT_SAMPLES],
      [true, true, true],
      'the demo page, ?mode=sync and sample rosters, which the page uses',
    );
    assert.equal(config.OUTBOX_PAGE, 'off');
    assert.equal(config.REDIS_PREFLIGHT_STRICT, true);
    assert.throws(() => loadConfig(env), /SMTP_URL: unset/, 'no SMTP_URL: refuses to start');
  });
});
