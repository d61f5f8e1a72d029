import { SMTPServer } from 'smtp-server';
import PostalMime, { type Email } from 'postal-mime';
import { freePort } from './ports.js';
import { Watched } from './watched.js';

export interface Received {
  from: string;
  to: string[];
  raw: string;
  mail: Email;
}

export interface TestSmtp {
  url: string;
  received: Received[];
  /** Resolves with the first message `match` accepts, as soon as it arrives. */
  waitFor(match: (message: Received) => boolean, timeoutMs?: number): Promise<Received>;
  /** Every DATA takes this long before the server answers (a slow provider). */
  delayMs: number;
  close(): Promise<void>;
}

/** A real SMTP server in the test process: nodemailer speaks real SMTP to it. */
export async function startSmtp(): Promise<TestSmtp> {
  const port = await freePort();
  const inbox = new Watched<Received>();
  const smtp: TestSmtp = {
    url: `smtp://127.0.0.1:${port}`,
    received: inbox.items,
    delayMs: 0,
    waitFor: (match, timeoutMs = 10_000) =>
      inbox.waitFor(match, {
        timeoutMs,
        describe: () => `no matching mail (${inbox.items.length} received)`,
      }),
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        setTimeout(() => {
          PostalMime.parse(raw).then(
            (mail) => {
              inbox.push({
                from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
                to: session.envelope.rcptTo.map((r) => r.address),
                raw,
                mail,
              });
              callback();
            },
            (error: unknown) => {
              callback(error as Error);
            },
          );
        }, smtp.delayMs);
      });
    },
  });
  // A client killed mid-conversation (kill -9 of a worker) resets its connection: the server
  // emits that as an error, which would otherwise be thrown in the test process.
  server.on('error', () => undefined);
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return smtp;
}
