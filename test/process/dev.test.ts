// `npm run dev` itself, as a developer runs it: a Procfile with two workers (each on its own
// queue, set by a VAR=value prefix), a .env under the real environment, and a reload on save
// that lets the active job finish instead of losing or re-running it.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, readFile, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { eventually } from '../harness/app.js';
import { sharedRedisUrl } from '../harness/global.js';
import { makeImage } from '../harness/images.js';
import { freePort } from '../harness/ports.js';
import { createDatabase } from '../harness/postgres.js';
import { Watched } from '../harness/watched.js';

type Line = { text: string; json?: Record<string, unknown> };
interface Status {
  state: string;
  attempts: number;
}

/** The README's multi-worker Procfile shape (one worker per queue, chosen on its line), with the
 * telemetry preload the real Procfile has. */
const PROCFILE = `web: node --import ./dist/src/telemetry.js dist/src/web.js
mailer: WORKER_QUEUES=mail node dist/workers/main.js
media: WORKER_QUEUES=media node dist/workers/main.js
`;
/** A job file the reload test saves unchanged: the watcher sees a write, the code stays. */
const SAVED = 'jobs/send-email.ts';

describe('npm run dev (two workers from a temp Procfile, .env, reload on save)', function () {
  this.timeout(120_000);
  let dev: ChildProcess;
  let exited: Promise<unknown>;
  const lines = new Watched<Line>();
  let base = '';
  let outbox = '';

  const waitForLine = (match: (line: Line) => boolean, what: string, timeoutMs = 30_000) =>
    lines.waitFor(match, {
      timeoutMs,
      gone: exited,
      describe: () =>
        `${what}. Output:\n${lines.items
          .slice(-40)
          .map((l) => l.text)
          .join('\n')}`,
    });
  const logged = (msg: string) => (l: Line) => l.json?.msg === msg;
  const count = (match: (line: Line) => boolean) => lines.items.filter(match).length;
  /** Every process of the Procfile is up: web listens, each worker consumes its queue. */
  const allUp = async (times: number) => {
    for (const [match, what] of [
      [logged('web listening'), 'web listening'],
      [(l: Line) => consuming(l, 'mail'), 'the mail worker'],
      [(l: Line) => consuming(l, 'media'), 'the media worker'],
    ] as const) {
      await waitForLine(() => count(match) >= times, `${what} (start ${times})`);
    }
  };
  const consuming = (l: Line, queue: string) =>
    l.json?.msg === 'consuming queues' && JSON.stringify(l.json.queues) === JSON.stringify([queue]);
  const status = async (id: string) => (await (await fetch(`${base}/jobs/${id}`)).json()) as Status;
  const completed = (id: string) =>
    eventually(
      async () => {
        const s = await status(id);
        return s.state === 'completed' ? s : undefined;
      },
      30_000,
      `job ${id} completed`,
    );
  const signup = async (email: string) => {
    const res = await fetch(`${base}/signup`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email, name: 'Dev Loop' }),
    });
    assert.equal(res.status, 202);
    return ((await res.json()) as { id: string }).id;
  };

  before(async () => {
    const dir = await mkdtemp(join(tmpdir(), 'offload-dev-'));
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    outbox = join(dir, 'outbox');
    await writeFile(join(dir, 'Procfile'), PROCFILE);
    // .env under the real environment: PORT here loses to the real PORT, MAIL_FROM applies.
    await writeFile(
      join(dir, '.env'),
      'PORT=1\nMAIL_FROM="Dotenv <dotenv@example.com>"\n# a mail takes 3 s: long enough to reload during one\nOUTBOX_DELAY_MS=3000\n',
    );
    dev = spawn(
      'npm',
      ['run', 'dev', '--', '--procfile', join(dir, 'Procfile'), '--env-file', join(dir, '.env')],
      {
        env: {
          ...process.env,
          REDIS_URL: sharedRedisUrl(),
          // Given, so the launcher starts no Postgres of its own (the temp Procfile has no
          // release line: the test database comes migrated).
          DATABASE_URL: await createDatabase(),
          QUEUE_PREFIX: `dev${randomUUID().slice(0, 8)}`,
          PORT: String(port),
          OUTBOX_DIR: outbox,
          STORAGE_DIR: join(dir, 'storage'),
          LOG_LEVEL: 'info',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
        // Its own process group, so the whole tree can be stopped if the test fails midway.
        detached: true,
      },
    );
    exited = once(dev, 'exit');
    for (const stream of [dev.stdout!, dev.stderr!]) {
      createInterface({ input: stream }).on('line', (text) => {
        let json: Record<string, unknown> | undefined;
        try {
          json = text.startsWith('{') ? (JSON.parse(text) as Record<string, unknown>) : undefined;
        } catch {
          // not JSON: the launcher's own [dev] lines
        }
        lines.push({ text, json });
      });
    }
    await allUp(1);
  });

  after(async () => {
    if (dev.exitCode !== null || dev.signalCode !== null) return;
    // SIGTERM to the group, as Ctrl-C would reach every process; SIGKILL if that hangs.
    process.kill(-dev.pid!, 'SIGTERM');
    const killer = setTimeout(() => process.kill(-dev.pid!, 'SIGKILL'), 30_000);
    await exited;
    clearTimeout(killer);
  });

  it('when the Procfile has two workers with VAR=value prefixes, then both start, each on its own queue, and complete a job each', async () => {
    assert.ok(
      lines.items.some(
        (l) => l.text === '[dev] mailer: WORKER_QUEUES=mail node --import tsx workers/main.ts',
      ),
    );
    const mail = await signup('dev-loop@example.com');
    const form = new FormData();
    form.append('image', new Blob([await makeImage('png', 300, 200)]), 'p.png');
    const upload = await fetch(`${base}/thumbnails`, { method: 'POST', body: form });
    assert.equal(upload.status, 202);
    const thumbnail = ((await upload.json()) as { id: string }).id;
    await Promise.all([completed(mail), completed(thumbnail)]);
    // The mail went through the .env's MAIL_FROM (the real PORT won: we reached it).
    const letter = await readFile(join(outbox, `${mail}.eml`), 'utf8');
    assert.match(letter, /^From: Dotenv <dotenv@example\.com>/m);
  });

  it('when a job file is saved while its job runs, then every process restarts and the job completes once, not lost or re-run', async () => {
    const id = await signup('dev-reload@example.com');
    await waitForLine(
      (l) => l.json?.msg === 'job started' && l.json.jobId === id,
      'the mail job started',
    );
    await writeFile(SAVED, await readFile(SAVED)); // saved, unchanged
    await waitForLine(
      (l) => l.text === `[dev] ${SAVED} changed: restarting`,
      'the reload names the file',
    );
    await allUp(2);
    const done = await completed(id);
    assert.equal(done.attempts, 1, 'ran once: finished by the old worker, not handed back');
    assert.equal(
      count((l) => l.json?.msg === 'job completed' && l.json.jobId === id),
      1,
    );
    assert.equal(
      count((l) => l.json?.msg === 'job interrupted by shutdown, put back in its queue'),
      0,
    );
    assert.deepEqual(
      await readdir(outbox).then((names) => names.filter((n) => n === `${id}.eml`)),
      [`${id}.eml`],
    );
    // And the restarted processes take new work.
    await completed(await signup('dev-after@example.com'));
  });
});
