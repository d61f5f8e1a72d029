import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * One structured logger to stdout: JSON for machines, pretty only when a person watches a TTY.
 * Secrets and mail bodies are never logged; `redact` catches the usual suspects anyway.
 *
 * Lines are written in batches (pino's asynchronous mode): at 4 KiB, or 100 ms after the first
 * line of a batch at the latest. A write per line cost a busy worker a tenth of its CPU (bench/
 * e2e). pino flushes what is left when the process exits, crashes included; only a kill -9
 * loses the last 100 ms of lines.
 */
export function createLogger(level: string, name: string): Logger {
  const options = {
    name,
    level,
    redact: ['req.headers.authorization', 'req.headers.cookie', '*.password', '*.smtpUrl'],
  };
  if (process.stdout.isTTY) return pino({ ...options, transport: { target: 'pino-pretty' } });
  return pino(
    options,
    pino.destination({ dest: 1, sync: false, minLength: 4096, periodicFlush: 100 }),
  );
}
