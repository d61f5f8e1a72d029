import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

/** What createLogger writes to stdout (a pipe) when the script logs `line`. */
async function output(line: string, format = 'json'): Promise<string> {
  const script = `
    const { createLogger } = await import('./src/logger.ts');
    createLogger('info', 'test', '${format}').info(${line}, 'check');`;
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['--import', 'tsx', '--input-type=module', '-e', script],
    { cwd: new URL('..', import.meta.url) },
  );
  return stdout;
}

/** The JSON line createLogger writes when the script logs `line`. */
async function logged(line: string): Promise<Record<string, unknown>> {
  const stdout = await output(line);
  return JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as Record<string, unknown>;
}

describe('logger', () => {
  it('when a line carries a password, an SMTP URL or secret config keys, then they are redacted and the rest is kept', async () => {
    const line = await logged(`{
      password: 'hunter2',
      smtpUrl: 'smtp://user:secret@mail.example',
      config: { SMTP_URL: 'smtp://user:secret@mail.example', ADMIN_PASSWORD: 'a', SIGNING_SECRET: 's', REDIS_URL: 'redis://:pw@r', PORT: 3000 },
      err: Object.assign(new Error('refused'), { password: 'p' }),
      req: { headers: { authorization: 'Basic eA==', cookie: 'c=1', host: 'example.com' } },
    }`);
    const text = JSON.stringify(line);
    for (const secret of ['hunter2', 'secret', 'Basic eA==', 'c=1', ':pw@']) {
      assert.ok(!text.includes(secret), `${secret} is not in the line`);
    }
    assert.equal(line.password, '[Redacted]');
    assert.deepEqual(line.config, {
      SMTP_URL: '[Redacted]',
      ADMIN_PASSWORD: '[Redacted]',
      SIGNING_SECRET: '[Redacted]',
      REDIS_URL: '[Redacted]',
      PORT: 3000,
    });
    assert.equal((line.err as { message: string }).message, 'refused');
    assert.equal((line.req as { headers: { host: string } }).headers.host, 'example.com');
    assert.equal(line.msg, 'check');
  });

  it('when LOG_FORMAT=pretty and pino-pretty is installed (development), then lines are formatted for a person, not JSON', async () => {
    const text = await output(`{ user: 'ann' }`, 'pretty');
    assert.match(text, /INFO.*check/);
    assert.throws(() => JSON.parse(text.trim()) as unknown);
  });
});
