import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import nodemailer from 'nodemailer';
import { PermanentError } from '../offload/index.js';
import { telemetry } from '../process/telemetry-hooks.js';

export interface Mail {
  to: string;
  subject: string;
  text: string;
  html: string;
  /**
   * Stable per logical email (the job id): a re-run after a crash sends the same Message-ID,
   * which servers and clients use to drop duplicates, and overwrites the same outbox file.
   */
  key: string;
}

export interface Sent {
  messageId: string;
  /** Where the letter went: the SMTP server, or a file in the outbox. */
  via: 'smtp' | 'outbox';
}

export interface Mailer {
  readonly via: 'smtp' | 'outbox';
  send(mail: Mail): Promise<Sent>;
  close(): void;
}

/** Header injection: a CR, LF or NUL in a header value would let input write its own headers. */
const UNSAFE_HEADER = /[\r\n\0]/;
const KEY = /^[\w-]{1,128}$/;

export function assertSafeHeaders(values: Record<string, string>): void {
  const bad = Object.entries(values).filter(([, value]) => UNSAFE_HEADER.test(value));
  if (bad.length > 0) {
    throw new PermanentError(
      `mail header ${bad.map(([name]) => name).join(', ')} contains CR, LF or NUL`,
    );
  }
}

/**
 * SMTP when `smtpUrl` is set; otherwise each letter becomes `<key>.eml` in `outboxDir`
 * (letter_opener's idea: real mail, nobody receives it, /dev/outbox shows it).
 */
export function createMailer(options: {
  smtpUrl?: string | undefined;
  from: string;
  outboxDir: string;
  /** Each outbox letter waits this long first, like a provider (OUTBOX_DELAY_MS). */
  outboxDelayMs?: number;
}): Mailer {
  const domain = /@([^>\s]+)>?\s*$/.exec(options.from)?.[1] ?? 'offload.localhost';
  const transport = options.smtpUrl
    ? nodemailer.createTransport(options.smtpUrl)
    : nodemailer.createTransport({ streamTransport: true, buffer: true, newline: 'unix' });
  const via = options.smtpUrl ? 'smtp' : 'outbox';

  const mailer: Mailer = {
    via,
    async send(mail) {
      assertSafeHeaders({ from: options.from, to: mail.to, subject: mail.subject });
      if (!KEY.test(mail.key)) throw new PermanentError('mail key must be a job id');
      const messageId = `<${mail.key}@${domain}>`;
      const info = await transport
        .sendMail({
          from: options.from,
          to: mail.to,
          subject: mail.subject,
          text: mail.text,
          html: mail.html,
          messageId,
          disableFileAccess: true,
          disableUrlAccess: true,
        })
        .catch((error: unknown) => {
          // A 5xx answer (a refused recipient, bad credentials) will be the same next time:
          // fail at once (a dead letter to replay once fixed) instead of spending retries.
          const { permanent, responseCode } = (error ?? {}) as SmtpError;
          if (permanent === true || (responseCode !== undefined && responseCode >= 500)) {
            throw new PermanentError(`SMTP refused: ${(error as Error).message}`);
          }
          throw error;
        });
      if (via === 'outbox') {
        if (options.outboxDelayMs) await sleep(options.outboxDelayMs);
        const raw: unknown = info.message;
        if (!Buffer.isBuffer(raw)) throw new Error('stream transport returned no message');
        await mkdir(options.outboxDir, { recursive: true });
        // Write then rename: a reader never sees half a letter, a re-run replaces it whole.
        const file = join(options.outboxDir, `${mail.key}.eml`);
        await writeFile(`${file}.tmp`, raw);
        await rename(`${file}.tmp`, file);
      }
      return { messageId, via };
    },
    close() {
      transport.close();
    },
  };
  // With tracing on, each send is a span of its own: the SMTP conversation, as time.
  const span = telemetry()?.span;
  if (!span) return mailer;
  const attributes = { 'mail.via': via };
  return { ...mailer, send: (mail) => span('mail send', attributes, () => mailer.send(mail)) };
}

/** What nodemailer adds to its errors. */
interface SmtpError {
  permanent?: boolean;
  responseCode?: number;
}
