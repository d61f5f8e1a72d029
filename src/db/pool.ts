// The app's Postgres client: one pg Pool per process, and transactions on it.
import pg from 'pg';
import { transaction, type SqlClient } from '../offload/index.js';

export type Db = pg.Pool;

/** A pool on `url`; its idle connections' errors (a restarted server) are logged, not thrown. */
export function createPool(
  url: string,
  size: number,
  onError: (error: Error) => void = () => undefined,
): Db {
  const pool = new pg.Pool({
    connectionString: url,
    max: size,
    // Fail fast, like the Redis producer: a request must not wait for a database that is away.
    connectionTimeoutMillis: 3_000,
    idleTimeoutMillis: 30_000,
  });
  pool.on('error', onError);
  return pool;
}

/**
 * Runs `fn` in a transaction on one of the pool's connections: the offloader's `transaction`
 * (jobs enqueued with `{ tx }` are relayed, or run inline, after the commit).
 */
export async function withTransaction<T>(db: Db, fn: (tx: SqlClient) => Promise<T>): Promise<T> {
  const client = await db.connect();
  let broken: Error | undefined;
  try {
    return await transaction(client, fn);
  } catch (error) {
    // A connection that failed mid-transaction is dropped, not reused.
    if (!(error instanceof pg.DatabaseError)) broken = error as Error;
    throw error;
  } finally {
    client.release(broken);
  }
}

/** A unique constraint refused the row (SQLSTATE 23505). */
export const isUniqueViolation = (error: unknown) =>
  error instanceof pg.DatabaseError && error.code === '23505';
