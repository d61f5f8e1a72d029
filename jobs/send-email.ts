import { z } from 'zod';
import type { Deps } from '../src/deps.js';
import { reportReady, welcome, type Rendered } from '../src/mail/templates.js';
import { defineJob, PermanentError, type JobContext } from '../src/offload/index.js';
import { zipKey } from '../src/reports/store.js';

/** One line, no CR/LF/NUL: these values end up in mail headers. */
const headerSafe = z.string().regex(/^[^\r\n\0]*$/, 'must not contain CR, LF or NUL');

export const sendEmailInput = z.discriminatedUnion('template', [
  // The signup's welcome, by the user's id: the row is re-read when the mail goes (pass ids,
  // not data), so a user deleted by then gets nothing. (`welcome` below: by address and name,
  // for an app without a database, DATABASE_URL unset.)
  z.strictObject({ template: z.literal('welcome-user'), userId: z.uuid() }),
  z.strictObject({
    template: z.literal('welcome'),
    to: z.email().max(254),
    name: headerSafe.trim().min(1).max(100),
  }),
  z.strictObject({
    template: z.literal('report-ready'),
    to: z.email().max(254),
    reportId: z.uuid(),
    cards: z.int().min(1),
  }),
]);

/**
 * Sends one templated email. Keyed by the job id, so a re-run sends the same Message-ID. A
 * download link is signed when the mail is sent, so it lives its full time from then.
 */
async function readUser(deps: Deps, id: string) {
  if (!deps.db) throw new PermanentError('a welcome-user mail needs DATABASE_URL');
  const { rows } = await deps.db.query<{ email: string; name: string }>(
    'SELECT email, name FROM users WHERE id = $1',
    [id],
  );
  return rows[0];
}

export default defineJob({
  name: 'send-email',
  queue: 'mail',
  input: sendEmailInput,
  retry: { attempts: 5, backoff: 'exponential', delayMs: 2_000, jitter: 0.2 },
  timeoutMs: 30_000,
  async run(input, ctx: JobContext<Deps>) {
    const { mailer, config, signer } = ctx.deps;
    let rendered: Rendered;
    let to: string;
    switch (input.template) {
      case 'welcome-user': {
        const user = await readUser(ctx.deps, input.userId);
        // Deleted before its mail went: nothing to send, and nothing to retry.
        if (!user) {
          ctx.log.info({ userId: input.userId }, 'user deleted: no welcome mail');
          return { skipped: 'user deleted' as const };
        }
        rendered = welcome({ name: user.name, appUrl: config.PUBLIC_URL });
        to = user.email;
        break;
      }
      case 'welcome':
        rendered = welcome({ name: input.name, appUrl: config.PUBLIC_URL });
        to = input.to;
        break;
      case 'report-ready': {
        const expiresInMs = config.FILE_MAX_AGE_HOURS * 3_600_000;
        rendered = reportReady({
          cards: input.cards,
          url: signer.signUrl(zipKey(input.reportId), { expiresInMs, absolute: true }),
          expiresAt: new Date(Date.now() + expiresInMs),
        });
        to = input.to;
        break;
      }
    }
    await ctx.progress(10);
    const sent = await mailer.send({ ...rendered, to, key: ctx.jobId });
    ctx.log.info({ messageId: sent.messageId, via: sent.via }, 'email sent');
    return sent;
  },
});
