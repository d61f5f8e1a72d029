import { SMTPServer } from 'smtp-server';
import PostalMime, { type Email } from 'postal-mime';
import { freePort } from './ports.js';

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
  const received: Received[] = [];
  const waiters = new Set<() => void>();
  const smtp: TestSmtp = {
    url: `smtp://127.0.0.1:${port}`,
    received,
    delayMs: 0,
    waitFor(match, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = received.find(match);
          if (!found) return;
          cleanup();
          resolve(found);
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(
            new Error(`no matching mail within ${timeoutMs} ms (${received.length} received)`),
          );
        }, timeoutMs);
        const cleanup = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
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
              received.push({
                from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
                to: session.envelope.rcptTo.map((r) => r.address),
                raw,
                mail,
              });
              for (const waiter of waiters) waiter();
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
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return smtp;
}
