import { z } from 'zod';
import { reportReady, welcome } from '../src/mail/templates.js';
import { defineJob } from '../src/offload/index.js';
import { zipKey } from '../src/reports/store.js';
/** One line, no CR/LF/NUL: these values end up in mail headers. */
const headerSafe = z.string().regex(/^[^\r\n\0]*$/, 'must not contain CR, LF or NUL');
export const sendEmailInput = z.discriminatedUnion('template', [
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
export default defineJob({
    name: 'send-email',
    queue: 'mail',
    input: sendEmailInput,
    retry: { attempts: 5, backoff: 'exponential', delayMs: 2_000, jitter: 0.2 },
    timeoutMs: 30_000,
    async run(input, ctx) {
        const { mailer, config, signer } = ctx.deps;
        let rendered;
        switch (input.template) {
            case 'welcome':
                rendered = welcome({ name: input.name, appUrl: config.PUBLIC_URL });
                break;
            case 'report-ready': {
                const expiresInMs = config.FILE_MAX_AGE_HOURS * 3_600_000;
                rendered = reportReady({
                    cards: input.cards,
                    url: signer.signUrl(zipKey(input.reportId), { expiresInMs, absolute: true }),
                    expiresAt: new Date(Date.now() + expiresInMs),
                });
                break;
            }
        }
        await ctx.progress(10);
        const sent = await mailer.send({ ...rendered, to: input.to, key: ctx.jobId });
        ctx.log.info({ messageId: sent.messageId, via: sent.via }, 'email sent');
        return sent;
    },
});
