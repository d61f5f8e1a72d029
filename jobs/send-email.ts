import { z } from 'zod';
import type { Deps } from '../src/deps.js';
import { welcome } from '../src/mail/templates.js';
import { defineJob, type JobContext } from '../src/offload/index.js';

/** One line, no CR/LF/NUL: these values end up in mail headers. */
const headerSafe = z.string().regex(/^[^\r\n\0]*$/, 'must not contain CR, LF or NUL');

export const sendEmailInput = z.discriminatedUnion('template', [
  z.strictObject({
    template: z.literal('welcome'),
    to: z.email().max(254),
    name: headerSafe.trim().min(1).max(100),
  }),
]);

/** Sends one templated email. Keyed by the job id, so a re-run sends the same Message-ID. */
export default defineJob({
  name: 'send-email',
  queue: 'mail',
  input: sendEmailInput,
  retry: { attempts: 5, backoff: 'exponential', delayMs: 2_000, jitter: 0.2 },
  timeoutMs: 30_000,
  async run(input, ctx: JobContext<Deps>) {
    const { mailer, config } = ctx.deps;
    const rendered = welcome({ name: input.name, appUrl: config.PUBLIC_URL });
    await ctx.progress(10);
    const sent = await mailer.send({ ...rendered, to: input.to, key: ctx.jobId });
    ctx.log.info({ messageId: sent.messageId, via: sent.via }, 'email sent');
    return sent;
  },
});
