// Mocha's global fixtures: one private redis-server for the whole run, stopped at the end (and
// the private Postgres, when a test started it: see postgres.ts).
import { stopSharedPostgres } from './postgres.js';
import { hasRedisServer, startRedis, type PrivateRedis } from './redis.js';

let redis: PrivateRedis | undefined;

export async function mochaGlobalSetup(): Promise<void> {
  if (!hasRedisServer()) {
    throw new Error(
      'redis-server is not on PATH. Install it (Debian/Ubuntu: sudo apt-get install redis-server; macOS: brew install redis) and run the tests again.',
    );
  }
  redis = await startRedis();
}

export async function mochaGlobalTeardown(): Promise<void> {
  await redis?.destroy();
  await stopSharedPostgres(); // started by the first test that asked for a database
}

/** The URL of the run's shared private Redis. */
export function sharedRedisUrl(): string {
  if (!redis) throw new Error('the shared redis is not running (mochaGlobalSetup did not run)');
  return redis.url;
}
