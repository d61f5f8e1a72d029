/**
 * True for a lost or refused connection. Those are logged once per outage by the connection
 * itself, so the queues and workers that relay the same error can ignore them.
 */
export function isConnectionError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return (
    (typeof code === 'string' &&
      /^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENOTFOUND|EPIPE|EHOSTUNREACH)$/.test(code)) ||
    (error instanceof Error && /Connection is closed|Stream isn't writeable/.test(error.message))
  );
}
