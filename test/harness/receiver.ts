// A webhook receiver that fails on purpose: each path answers from its own script, one answer
// per request, and keeps what it received.
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { eventually } from './app.js';

/** How to answer one request: a status (after `hold` settles), or no answer, or a TCP reset. */
export type Answer =
  { status: number; headers?: Record<string, string>; hold?: Promise<unknown> } | 'hang' | 'reset';

export interface Received {
  /** When it arrived (Date.now()). */
  at: number;
  headers: IncomingHttpHeaders;
  /** The raw body, as the signature covers it. */
  body: string;
  /** When the answer was sent, if one was. */
  answeredAt?: number;
  /** The client went away before an answer (it timed out). */
  abandoned: boolean;
}

export interface Receiver {
  /** The URL of `path` on this server. */
  url(path: string): string;
  /** Requests to `path` get these answers in order; past the end, the last one again. */
  script(path: string, answers: Answer[]): void;
  received(path: string): Received[];
  /** Resolves once `path` has received `count` requests. */
  waitFor(path: string, count: number, timeoutMs?: number): Promise<Received[]>;
  close(): Promise<void>;
}

export async function startReceiver(): Promise<Receiver> {
  const scripts = new Map<string, Answer[]>();
  const log = new Map<string, Received[]>();
  const receivedAt = (path: string) => {
    let list = log.get(path);
    if (!list) log.set(path, (list = []));
    return list;
  };

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const path = new URL(req.url ?? '/', 'http://receiver').pathname;
      const list = receivedAt(path);
      const answers = scripts.get(path) ?? [{ status: 404 }];
      const answer = answers[Math.min(list.length, answers.length - 1)] ?? { status: 404 };
      const record: Received = {
        at: Date.now(),
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
        abandoned: false,
      };
      list.push(record);
      res.on('close', () => {
        if (!res.writableFinished) record.abandoned = true;
      });
      if (answer === 'hang') return;
      if (answer === 'reset') {
        req.socket.resetAndDestroy();
        return;
      }
      void Promise.resolve(answer.hold).then(() => {
        record.answeredAt = Date.now();
        res.writeHead(answer.status, answer.headers).end();
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: (path) => `http://127.0.0.1:${port}${path}`,
    script(path, answers) {
      scripts.set(path, answers);
    },
    received: (path) => receivedAt(path),
    waitFor: (path, count, timeoutMs = 15_000) =>
      eventually(
        () => (receivedAt(path).length >= count ? receivedAt(path) : undefined),
        timeoutMs,
        `${count} requests to ${path}`,
      ),
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
