/**
 * A Postgres connection, or one in a transaction: typed by shape, so the offloader depends on no
 * client. pg's Client, PoolClient and Pool, and PGlite, all fit.
 */
export interface SqlClient {
  query(text: string, values?: unknown[]): Promise<{ rows: unknown[] }>;
}

/** A pool's connection, held for a transaction: pg's PoolClient fits. */
export interface PooledClient extends SqlClient {
  release(error?: Error | boolean): void;
}
