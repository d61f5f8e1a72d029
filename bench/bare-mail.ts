// What the email suite's bare variants send per mail: the welcome message as src/mail/mailer.ts
// sends it (rendered per mail, as the send-email job renders it), with a fresh Message-ID.
import { randomUUID } from 'node:crypto';
import type { SendMailOptions } from 'nodemailer';
import type { Config } from '../src/config.js';
import { welcome } from '../src/mail/templates.js';

/** The message for `to` and `name`; the sender's domain is worked out once. */
export function bareWelcome(config: Config): (to: string, name: string) => SendMailOptions {
  const domain = /@([^>\s]+)>?\s*$/.exec(config.MAIL_FROM)?.[1] ?? 'offload.localhost';
  return (to, name) => {
    const letter = welcome({ name, appUrl: config.PUBLIC_URL });
    return {
      from: config.MAIL_FROM,
      to,
      subject: letter.subject,
      text: letter.text,
      html: letter.html,
      messageId: `<${randomUUID()}@${domain}>`,
      disableFileAccess: true,
      disableUrlAccess: true,
    };
  };
}
