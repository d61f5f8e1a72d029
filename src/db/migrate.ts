// Migrations: SQL files in migrations/ (node-pg-migrate's `-- Up Migration` / `-- Down
// Migration` format), applied in order, each once, under an advisory lock (two processes
// migrating at once take turns). Run by the Procfile's `release` process in production, by
// `npm run dev`, and by the tests on each test database.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { runner } from 'node-pg-migrate';

/** migrations/ at the project's root, from src/db/ or from dist/src/db/. */
export function migrationsDir(): string {
  let dir = import.meta.dirname;
  for (let i = 0; i < 4; i++) {
    const candidate = join(dir, 'migrations');
    if (existsSync(candidate)) return candidate;
    dir = dirname(dir);
  }
  throw new Error('migrations/ not found above src/db');
}

/** Applies every pending migration to the database at `url`; answers their names. */
export async function migrate(
  url: string,
  log: { info(o: object, m: string): void } = { info: () => undefined },
): Promise<string[]> {
  const applied = await runner({
    databaseUrl: url,
    dir: migrationsDir(),
    direction: 'up',
    migrationsTable: 'pgmigrations',
    checkOrder: true,
    singleTransaction: true,
    log: () => undefined, // node-pg-migrate's own chatter; what was applied is logged below
  });
  const names = applied.map((migration) => migration.name);
  log.info({ applied: names }, names.length ? 'migrations applied' : 'migrations up to date');
  return names;
}
