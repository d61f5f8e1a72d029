// What a Heroku-style buildpack does with this repo, done here: clone the committed tree, `npm
// ci`, `npm run build`, `npm prune --omit=dev`, then run the Procfile's lines as written, in
// production mode with app.json's config vars, once with stdout a pipe and once on a terminal.
// It proves the lock installs, the build needs nothing it prunes, and the running processes
// need no devDependency (pino-pretty on a terminal was one).
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { eventually } from '../harness/app.js';
import { sharedRedisUrl } from '../harness/global.js';
import { makeImage } from '../harness/images.js';
import { freePort } from '../harness/ports.js';
import { readProcfile, type LogLine } from '../harness/procfile.js';
import { startS3, type TestS3 } from '../harness/s3.js';
import { startSmtp, type TestSmtp } from '../harness/smtp.js';
import { Watched } from '../harness/watched.js';

const run = promisify(execFile);

interface PackageJson {
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
}
interface AppJson {
  env: Record<string, { value?: string; generator?: string; required?: boolean }>;
}

/** A Procfile line, run as the platform runs it: by a shell, on a pipe or on a terminal. */
interface Started {
  lines: LogLine[];
  /** Output that is not a JSON log line (a crash trace, a warning, pretty-printed logs). */
  other: string[];
  waitForLog(match: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  exited: Promise<number | NodeJS.Signals>;
  kill(): void;
}

function startLine(
  command: string,
  { cwd, env, tty }: { cwd: string; env: Record<string, string>; tty: boolean },
): Started {
  // script(1) runs the command on a pseudo-terminal (its stdout a TTY) and passes its output
  // and exit code on (-e); -q: no banner. It runs the command with $SHELL -c.
  const [file, args] = tty ? ['script', ['-qec', command, '/dev/null']] : ['sh', ['-c', command]];
  const child = spawn(file, args, {
    cwd,
    env: { ...env, SHELL: '/bin/sh' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines = new Watched<LogLine>();
  const other: string[] = [];
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream }).on('line', (raw) => {
      const text = raw.replace(/\r$/, ''); // a terminal ends lines with CR LF
      try {
        lines.push(JSON.parse(text) as LogLine);
      } catch {
        if (text.trim() !== '') other.push(text);
      }
    });
  }
  const exited = once(child, 'exit').then(
    ([code, signal]) => (code ?? signal) as number | NodeJS.Signals,
  );
  return {
    lines: lines.items,
    other,
    exited,
    waitForLog: (match, timeoutMs = 30_000) =>
      lines.waitFor(match, {
        timeoutMs,
        gone: exited,
        describe: () => `"${command}" did not log that. Output:\n${other.slice(-30).join('\n')}`,
      }),
    kill: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}

/** A bare specifier: a package name (maybe scoped), maybe a path inside it. */
const PACKAGE = /^(@[a-z0-9][\w.-]*\/)?[a-z0-9][\w.-]*(\/.*)?$/;

/** The bare package names that compiled code under `dir` imports or resolves files of. */
async function importedPackages(dir: string): Promise<Set<string>> {
  const names = new Set<string>();
  const files = await readdir(dir, { recursive: true });
  for (const file of files.filter((f) => f.endsWith('.js'))) {
    const code = await readFile(join(dir, file), 'utf8');
    for (const [, specifier = ''] of code.matchAll(
      // import ... from 'x', import 'x', import('x'), and require.resolve('x') (files of a package)
      /(?:\bfrom\s*|\bimport\s*|\bimport\(\s*|\bresolve\(\s*)['"]([^'"\s]+)['"]/g,
    )) {
      if (!PACKAGE.test(specifier) || specifier.startsWith('node:')) continue;
      if (builtinModules.includes(specifier)) continue;
      const parts = specifier.split('/');
      names.add(specifier.startsWith('@') ? parts.slice(0, 2).join('/') : (parts[0] ?? ''));
    }
  }
  return names;
}

describe('a buildpack deploy of the committed tree (clone, npm ci, build, prune, Procfile)', function () {
  // The build runs once; each run of the processes has its own bound below.
  this.timeout(60_000);
  let dir = '';
  let app = '';
  let pkg: PackageJson;

  before(async function () {
    this.timeout(240_000); // npm ci from npm's warm cache, tsc, prune: about a minute here
    const head = (await run('git', ['rev-parse', 'HEAD'])).stdout.trim();
    const top = (await run('git', ['rev-parse', '--show-toplevel'])).stdout.trim();
    dir = await mkdtemp(join(tmpdir(), 'offload-buildpack-'));
    app = join(dir, 'app');
    await run('git', ['clone', '--quiet', '--no-checkout', '--shared', top, app]);
    await run('git', ['-C', app, 'checkout', '--quiet', '--detach', head]);
    // As the buildpack: dev dependencies are installed for the build (NODE_ENV is not
    // production while installing), then pruned.
    const env: NodeJS.ProcessEnv = { ...process.env, NODE_ENV: undefined };
    const step = (args: string[], timeout: number) =>
      run('npm', args, { cwd: app, env, timeout, maxBuffer: 16 * 1024 * 1024 });
    await step(['ci', '--no-audit', '--no-fund', '--prefer-offline'], 150_000);
    await step(['run', 'build'], 120_000);
    await step(['prune', '--omit=dev', '--no-audit', '--no-fund'], 60_000);
    pkg = JSON.parse(readFileSync(join(app, 'package.json'), 'utf8')) as PackageJson;
  });

  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('when pruned, then no devDependency is left but those a dependency itself needs', async () => {
    // npm keeps a package that a runtime dependency needs too (a peer: typescript for valibot,
    // under bull-board): present, but not there for this app's code.
    const { stdout } = await run('npm', ['ls', '--omit=dev', '--all', '--parseable'], { cwd: app });
    const runtime = new Set(stdout.split('\n').map((path) => path.split('node_modules/').at(-1)));
    const left = Object.keys(pkg.devDependencies).filter(
      (name) => existsSync(join(app, 'node_modules', name)) && !runtime.has(name),
    );
    assert.deepEqual(left, []);
    assert.ok(!existsSync(join(app, 'node_modules/pino-pretty')), 'pino-pretty is pruned');
    assert.ok(existsSync(join(app, 'dist/src/web.js')), 'the build is there');
  });

  it('when the compiled code is read, then every package it imports is a dependency, and every dependency is imported', async () => {
    const imported = await importedPackages(join(app, 'dist'));
    const dependencies = Object.keys(pkg.dependencies);
    assert.deepEqual(
      [...imported].filter((name) => !dependencies.includes(name)).sort(),
      [],
      'imported but not in dependencies',
    );
    assert.deepEqual(
      dependencies.filter((name) => !imported.has(name)).sort(),
      [],
      'in dependencies but used by no running code (a test or bench tool belongs in devDependencies)',
    );
  });

  it('when LOG_FORMAT=pretty is asked of the pruned install, then it logs JSON and says pino-pretty is missing', async () => {
    const script = `const { createLogger } = await import('./dist/src/logger.js');
      createLogger('info', 'check', 'pretty').info('still logging');`;
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], {
      cwd: app,
    });
    const lines = stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as LogLine);
    assert.deepEqual(
      lines.map((l) => l.msg),
      [
        'LOG_FORMAT=pretty needs pino-pretty (a devDependency, not installed): logging JSON',
        'still logging',
      ],
    );
  });

  for (const tty of [false, true]) {
    describe(`when web and worker run as the Procfile says, with stdout ${tty ? 'a terminal' : 'a pipe'}`, function () {
      this.timeout(90_000);
      let smtp: TestSmtp;
      let s3: TestS3;
      let base = '';
      const procs: Record<string, Started> = {};

      before(async () => {
        smtp = await startSmtp();
        s3 = await startS3();
        const port = await freePort();
        base = `http://127.0.0.1:${port}`;
        // app.json's config vars as Heroku fills them: values, generated secrets, and the
        // required ones (here: this test's SMTP server, bucket and URL). A clean environment,
        // as on a dyno: nothing of this test process leaks in.
        const appJson = JSON.parse(readFileSync(join(app, 'app.json'), 'utf8')) as AppJson;
        const env: Record<string, string> = { PATH: process.env.PATH ?? '', HOME: dir };
        for (const [key, spec] of Object.entries(appJson.env)) {
          if (spec.generator === 'secret') env[key] = randomBytes(32).toString('hex');
          else if (spec.value !== undefined) env[key] = spec.value;
        }
        const given: Record<string, string> = {
          ...s3.env,
          PUBLIC_URL: base,
          SMTP_URL: smtp.url,
          REDIS_URL: sharedRedisUrl(), // the add-on's
          PORT: String(port), // the platform's
          QUEUE_PREFIX: `b${randomUUID().slice(0, 8)}`, // this test's own, on the shared Redis
          NODE_ENV: 'production', // the Node.js buildpack sets it
        };
        for (const [key, spec] of Object.entries(appJson.env)) {
          if (spec.required) assert.ok(given[key], `app.json requires ${key}; the test gives it`);
        }
        Object.assign(env, given);
        const procfile = readProcfile(join(app, 'Procfile'));
        for (const type of ['web', 'worker']) {
          const command = procfile.get(type) ?? assert.fail(`the Procfile has no ${type}`);
          procs[type] = startLine(command, { cwd: app, env, tty });
        }
        await procs.web!.waitForLog((l) => l.msg === 'web listening');
        await procs.worker!.waitForLog((l) => l.msg === 'consuming queues');
      });

      after(async () => {
        for (const proc of Object.values(procs)) proc.kill();
        await smtp.close();
        await s3.close();
      });

      const completed = async (res: Response) => {
        assert.equal(res.status, 202, await res.clone().text());
        const { id } = (await res.json()) as { id: string };
        return eventually(
          async () => {
            const status = (await (await fetch(`${base}/jobs/${id}`)).json()) as {
              state: string;
              result?: unknown;
            };
            assert.notEqual(status.state, 'failed', JSON.stringify(status));
            return status.state === 'completed' ? status : undefined;
          },
          60_000,
          `job ${id} completed`,
        );
      };

      it('then a signup mails its welcome through SMTP', async () => {
        const email = `signup-${tty ? 'tty' : 'pipe'}@example.com`;
        await completed(
          await fetch(`${base}/signup`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ email, name: 'Build Pack' }),
          }),
        );
        await smtp.waitFor((m) => m.to.includes(email), 30_000);
      });

      it('then a thumbnail is made in the bucket and downloads', async () => {
        const form = new FormData();
        const photo = await makeImage('jpeg', 320, 240);
        form.append('image', new Blob([photo], { type: 'image/jpeg' }), 'photo.jpg');
        const status = await completed(
          await fetch(`${base}/thumbnails`, { method: 'POST', body: form }),
        );
        const { thumbnails } = status.result as { thumbnails: { url: string }[] };
        assert.ok(thumbnails.length > 0);
        const download = await fetch(`${base}${thumbnails[0]!.url}`);
        assert.equal(download.status, 200);
        assert.equal(download.headers.get('content-type'), 'image/webp');
      });

      it('then a small report is rendered, zipped and its link mailed, and the link downloads', async () => {
        const email = `report-${tty ? 'tty' : 'pipe'}@example.com`;
        const students = [
          { id: 'S1', name: 'Ann Lee' },
          { id: 'S2', name: 'Bo Chen' },
        ];
        await completed(
          await fetch(`${base}/reports`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ email, students }),
          }),
        );
        const mail = await smtp.waitFor((m) => m.to.includes(email), 30_000);
        const link = /^Download: (\S+)$/m.exec(mail.mail.text ?? '')?.[1] ?? assert.fail('no link');
        const zip = await fetch(link);
        assert.equal(zip.status, 200);
        assert.equal(
          Buffer.from(await zip.arrayBuffer())
            .subarray(0, 2)
            .toString(),
          'PK',
        );
      });

      it('then SIGTERM ends both with exit 0, and nothing but JSON log lines was written', async () => {
        for (const proc of Object.values(procs)) {
          // Sent to node itself (its pid is in every log line), as a PaaS signals every process.
          process.kill(Number(proc.lines[0]?.pid), 'SIGTERM');
        }
        for (const [type, proc] of Object.entries(procs)) {
          assert.equal(await proc.exited, 0, `${type} exit code`);
          // No pretty-printing on a terminal, no crash trace, no warning (a Node version one).
          assert.deepEqual(proc.other, [], `${type} wrote only JSON lines`);
          assert.ok(
            !proc.lines.some((l) => Number(l.level) >= 50),
            `${type} logged no error: ${JSON.stringify(proc.lines.filter((l) => Number(l.level) >= 50))}`,
          );
        }
      });
    });
  }
});
