// The core logs through this small interface, not a logging library: pino's loggers fit it as
// they are, and any other logger needs a few lines of adapter (as Graphile Worker's does).

/** `log.info({ jobId }, 'job done')` or `log.info('job done')`: structured fields first. */
export interface LogFn {
  (fields: object, message?: string): void;
  (message: string): void;
}

/** What the core needs of a logger: four levels, and a child carrying extra fields. */
export interface Logger {
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
  child(fields: Record<string, unknown>): Logger;
}

/**
 * For an app that hands the core no logger: warnings and errors as JSON lines on stderr, the
 * rest dropped.
 */
export function consoleLogger(bound: Record<string, unknown> = {}): Logger {
  const write =
    (level: string): LogFn =>
    (first: object | string, message?: string) => {
      const fields = typeof first === 'string' ? {} : serialize(first);
      const msg = typeof first === 'string' ? first : message;
      process.stderr.write(`${JSON.stringify({ level, ...bound, ...fields, msg })}\n`);
    };
  const quiet: LogFn = () => undefined;
  return {
    debug: quiet,
    info: quiet,
    warn: write('warn'),
    error: write('error'),
    child: (fields) => consoleLogger({ ...bound, ...fields }),
  };
}

/** An `err` field as its message and stack (JSON.stringify drops an Error's own fields). */
function serialize(fields: object): Record<string, unknown> {
  const { err, ...rest } = fields as { err?: unknown };
  return err instanceof Error
    ? { ...rest, err: { message: err.message, stack: err.stack } }
    : { ...rest, ...(err === undefined ? {} : { err }) };
}
