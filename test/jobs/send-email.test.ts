import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, readdir, readFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sendEmail } from '../../jobs/index.js';
import { loadConfig } from '../../src/config.js';
import { createDeps, type Deps } from '../../src/deps.js';
import { createLogger } from '../../src/logger.js';
import { PermanentError, runJob, type JobContext } from '../../src/offload/index.js';
import { SMTPServer } from 'smtp-server';
import { startSmtp } from '../harness/smtp.js';

const log = createLogger('silent', 'test');

function context(deps: Deps, jobId: string): JobContext<Deps> {
  return {
    jobId,
    attempt: 1,
    log,
    deps,
    signal: new AbortController().signal,
    results: () => Promise.resolve([]),
    progress: () => Promise.resolve(),
    enqueue: () => Promise.reject(new Error('send-email enqueues nothing')),
  };
}

describe('send-email job', () => {
  it('when SMTP_URL is unset, then each mail is written to the outbox as <job id>.eml, and a re-run replaces it', async () => {
    const outbox = join(await mkdtemp(join(tmpdir(), 'offload-')), 'outbox');
    const deps = createDeps(loadConfig({ OUTBOX_DIR: outbox, PUBLIC_URL: 'https://app.example' }));
    const input = { template: 'welcome' as const, to: 'o@example.com', name: 'Olive' };
    // Called directly, as a plain function: no queue involved.
    const first = await sendEmail.run(input, context(deps, 'job-1'));
    const again = await sendEmail.run(input, context(deps, 'job-1'));
    assert.deepEqual(first, { messageId: '<job-1@offload.localhost>', via: 'outbox' });
    assert.deepEqual(again, first, 'a re-run is the same letter');
    assert.deepEqual(await readdir(outbox), ['job-1.eml']);
    const raw = await readFile(join(outbox, 'job-1.eml'), 'utf8');
    assert.match(raw, /^Message-ID: <job-1@offload\.localhost>$/m);
    assert.match(raw, /^Subject: Welcome, Olive!$/m);
    assert.match(raw, /https:\/\/app\.example/);
  });

  it('when a header value holds CR, LF or NUL, then it fails permanently and sends nothing', async () => {
    const smtp = await startSmtp();
    try {
      const deps = createDeps(loadConfig({ SMTP_URL: smtp.url }));
      for (const to of [
        'a@example.com\r\nBcc: b@example.com',
        'a@example.com\nX: y',
        'a\0@example.com',
      ]) {
        await assert.rejects(
          deps.mailer.send({ to, subject: 'Hi', text: 't', html: '<p>t</p>', key: 'k' }),
          (error: unknown) =>
            error instanceof PermanentError &&
            /header to contains CR, LF or NUL/.test(error.message),
        );
      }
      await assert.rejects(
        runJob(
          sendEmail,
          { template: 'welcome', to: 'a@example.com', name: 'A\r\nBcc: b@example.com' },
          {
            ...context(deps, 'job-2'),
            signal: undefined,
          },
        ),
        /invalid input for job send-email: name: must not contain CR, LF or NUL/,
      );
      assert.equal(smtp.received.length, 0);
      deps.mailer.close();
    } finally {
      await smtp.close();
    }
  });

  it('when the SMTP server refuses for good (5xx), then it fails permanently; a 4xx is retried', async () => {
    // A server that answers each recipient with the code its local part names: 550@… or 451@…
    const server = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS'],
      onRcptTo(address, _session, callback) {
        const code = Number(address.address.split('@')[0]);
        callback(Object.assign(new Error(`refused with ${code}`), { responseCode: code }));
      },
    });
    server.listen(0, '127.0.0.1');
    await once(server.server, 'listening');
    const { port } = server.server.address() as AddressInfo;
    const deps = createDeps(loadConfig({ SMTP_URL: `smtp://127.0.0.1:${port}` }));
    try {
      const mail = { subject: 'Hi', text: 't', html: '<p>t</p>', key: 'job-5xx' };
      await assert.rejects(
        deps.mailer.send({ ...mail, to: '550@example.com' }),
        (error: unknown) => error instanceof PermanentError && /SMTP refused/.test(error.message),
      );
      await assert.rejects(
        deps.mailer.send({ ...mail, to: '451@example.com' }),
        (error: unknown) => error instanceof Error && !(error instanceof PermanentError),
      );
    } finally {
      deps.mailer.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('when names hold HTML, then the HTML part escapes them', async () => {
    const smtp = await startSmtp();
    try {
      const deps = createDeps(loadConfig({ SMTP_URL: smtp.url }));
      await sendEmail.run(
        { template: 'welcome', to: 'h@example.com', name: '<script>x</script>' },
        context(deps, 'job-3'),
      );
      const { mail } = await smtp.waitFor((m) => m.to.includes('h@example.com'));
      assert.ok(!(mail.html ?? '').includes('<script>'));
      assert.match(mail.html ?? '', /&lt;script&gt;x&lt;\/script&gt;/);
      deps.mailer.close();
    } finally {
      await smtp.close();
    }
  });
});
