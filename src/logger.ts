import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * One structured logger to stdout: JSON for machines, pretty only when a person watches a TTY.
 * Secrets and mail bodies are never logged; `redact` catches the usual suspects anyway.
 */
export function createLogger(level: string, name: string): Logger {
  return pino({
    name,
    level,
    redact: ['req.headers.authorization', 'req.headers.cookie', '*.password', '*.smtpUrl'],
    ...(process.stdout.isTTY ? { transport: { target: 'pino-pretty' } } : {}),
  });
}
