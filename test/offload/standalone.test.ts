// The offloader core is meant to be lifted into any Express app: this test does that. It reads
// the core's import graph (only npm packages and itself, no cycle), copies src/offload/ alone
// into a scratch project whose package.json names only those packages, compiles it there with
// the project's settings, and runs a minimal Express app with one job against the run's Redis,
// driving the whole cycle over real HTTP.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import {
  cpSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, posix, resolve } from 'node:path';
import { sharedRedisUrl } from '../harness/global.js';

const CORE = 'src/offload';
const NODE_MODULES = resolve('node_modules');

/** Every module specifier a TypeScript file names: imports, re-exports and dynamic imports. */
function specifiers(source: string): string[] {
  const found = source.matchAll(
    /(?:^|[\s;])(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|import\s*\(\s*['"]([^'"]+)['"]\s*\)|^import\s+['"]([^'"]+)['"]/gm,
  );
  return [...found].map(([, from, dynamic, bare]) => from ?? dynamic ?? bare ?? '');
}

/** The npm package a bare specifier names (`@scope/name` or `name`). */
const packageOf = (specifier: string) =>
  specifier
    .split('/')
    .slice(0, specifier.startsWith('@') ? 2 : 1)
    .join('/');

interface Graph {
  /** file → the core's files it imports */
  edges: Map<string, string[]>;
  /** what points outside the core: `file: specifier` */
  outside: string[];
  packages: Set<string>;
}

function importGraph(dir: string): Graph {
  const graph: Graph = { edges: new Map(), outside: [], packages: new Set() };
  const files = readdirSync(dir).filter((f) => f.endsWith('.ts'));
  for (const file of files) {
    const local: string[] = [];
    for (const specifier of specifiers(readFileSync(join(dir, file), 'utf8'))) {
      if (specifier.startsWith('node:')) continue;
      if (!specifier.startsWith('.')) {
        graph.packages.add(packageOf(specifier));
        continue;
      }
      const target = posix.normalize(specifier).replace(/\.js$/, '.ts');
      if (target.includes('/') || !files.includes(target))
        graph.outside.push(`${file}: ${specifier}`);
      else local.push(target);
    }
    graph.edges.set(file, local);
  }
  return graph;
}

/** Each import cycle found, as `a.ts → b.ts → a.ts`. */
function cycles(edges: Map<string, string[]>): string[] {
  const found: string[] = [];
  const state = new Map<string, 'open' | 'done'>();
  const visit = (file: string, path: string[]) => {
    state.set(file, 'open');
    for (const next of edges.get(file) ?? []) {
      if (state.get(next) === 'open')
        found.push([...path.slice(path.indexOf(next)), next].join(' → '));
      else if (!state.has(next)) visit(next, [...path, next]);
    }
    state.set(file, 'done');
  };
  for (const file of edges.keys()) if (!state.has(file)) visit(file, [file]);
  return found;
}

describe('the offloader core on its own', function () {
  this.timeout(240_000);
  const graph = importGraph(CORE);

  it('when its imports are read, then it names nothing outside src/offload/ but npm packages', () => {
    assert.deepEqual(graph.outside, []);
    assert.ok(graph.edges.size > 10, 'the core’s files were read');
  });

  it('when its import graph is walked (type-only imports included), then there is no cycle', () => {
    assert.deepEqual(cycles(graph.edges), []);
  });

  it('when the walk meets a cycle or an import of the app, then it reports them (the check can fail)', () => {
    const scratch = mkdtempSync(join(tmpdir(), 'offload-graph-'));
    try {
      writeFileSync(
        join(scratch, 'a.ts'),
        "import type { B } from './b.js';\nexport type A = B;\n",
      );
      writeFileSync(
        join(scratch, 'b.ts'),
        "import { type A } from './a.js';\nexport type B = A;\n",
      );
      writeFileSync(join(scratch, 'c.ts'), "export { log } from '../logger.js';\n");
      const bad = importGraph(scratch);
      assert.deepEqual(cycles(bad.edges), ['a.ts → b.ts → a.ts']);
      assert.deepEqual(bad.outside, ['c.ts: ../logger.js']);
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  });

  describe('copied alone into a fresh Express app', () => {
    let project = '';
    let app: ChildProcess | undefined;
    let base = '';
    let output = '';

    before(async () => {
      project = mkdtempSync(join(tmpdir(), 'offload-standalone-'));
      cpSync(CORE, join(project, 'offload'), { recursive: true });
      // Only what the core imports, plus the compiler and the type packages it needs; taken
      // from this project's node_modules (linked, not downloaded).
      const runtime = [...graph.packages].sort();
      const tools = ['typescript', '@types/node', '@types/express'];
      const version = (name: string) =>
        (
          JSON.parse(readFileSync(join(NODE_MODULES, name, 'package.json'), 'utf8')) as {
            version: string;
          }
        ).version;
      const pkg = {
        name: 'offload-standalone',
        private: true,
        type: 'module',
        dependencies: Object.fromEntries(runtime.map((name) => [name, version(name)])),
        devDependencies: Object.fromEntries(tools.map((name) => [name, version(name)])),
      };
      writeFileSync(join(project, 'package.json'), JSON.stringify(pkg, null, 2));
      for (const name of [...runtime, ...tools]) {
        const link = join(project, 'node_modules', name);
        mkdirSync(dirname(link), { recursive: true });
        symlinkSync(join(NODE_MODULES, name), link, 'dir');
      }
      writeFileSync(
        join(project, 'tsconfig.json'),
        JSON.stringify({
          compilerOptions: {
            target: 'ES2023',
            lib: ['ES2023'],
            module: 'NodeNext',
            moduleResolution: 'NodeNext',
            types: ['node'],
            strict: true,
            noUncheckedIndexedAccess: true,
            skipLibCheck: true,
            verbatimModuleSyntax: true,
            outDir: 'dist',
          },
          include: ['offload', 'main.ts'],
        }),
      );
      writeFileSync(join(project, 'main.ts'), MAIN);
      const tsc = spawnSync(
        process.execPath,
        [join(NODE_MODULES, 'typescript/bin/tsc'), '-p', project],
        { encoding: 'utf8' },
      );
      assert.equal(tsc.status, 0, `the copy compiles on its own:\n${tsc.stdout}${tsc.stderr}`);

      app = spawn(process.execPath, [join(project, 'dist/main.js')], {
        cwd: project,
        env: {
          PATH: process.env.PATH ?? '',
          REDIS_URL: sharedRedisUrl(),
          PREFIX: `standalone-${randomUUID()}`,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      app.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
      const started = app;
      base = await new Promise<string>((done, fail) => {
        let line = '';
        started.stdout?.on('data', (chunk: Buffer) => {
          line += chunk.toString();
          const port = /listening on (\d+)/.exec(line)?.[1];
          if (port) done(`http://127.0.0.1:${port}`);
        });
        started.once('exit', (code) => {
          fail(new Error(`the app exited (${String(code)}) before listening:\n${line}${output}`));
        });
      });
    });

    after(async () => {
      if (app && app.exitCode === null) {
        const exited = once(app, 'exit');
        app.kill('SIGTERM');
        const stuck = setTimeout(() => app?.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(stuck);
      }
      if (project) rmSync(project, { recursive: true, force: true });
    });

    const post = (body: unknown, headers: Record<string, string> = {}) =>
      fetch(`${base}/naps`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', ...headers },
        body: JSON.stringify(body),
      });

    it('when a job is enqueued, then 202 points at a status that a worker brings to completed, and the event stream ends on it', async () => {
      const res = await post({ ms: 50 });
      assert.equal(res.status, 202);
      const accepted = (await res.json()) as { id: string; statusUrl: string; eventsUrl: string };
      assert.equal(res.headers.get('location'), `/jobs/${accepted.id}`);
      assert.equal(accepted.statusUrl, `/jobs/${accepted.id}`);

      const events = await (await fetch(`${base}${accepted.eventsUrl}`)).text();
      assert.match(events, /^event: completed\ndata: .*"state":"completed"/m);

      const status = (await (await fetch(`${base}${accepted.statusUrl}`)).json()) as {
        state: string;
        result: unknown;
        attempts: number;
      };
      assert.equal(status.state, 'completed');
      assert.deepEqual(status.result, { slept: 50 });
      assert.equal(status.attempts, 1);
      assert.equal((await fetch(`${base}/jobs/${randomUUID()}`)).status, 404);
    });

    it('when a running job is cancelled, then DELETE answers its cancelled status, and again 409', async () => {
      const { id } = (await (await post({ ms: 60_000 })).json()) as { id: string };
      const deadline = Date.now() + 30_000;
      for (let state = ''; state !== 'active';) {
        assert.ok(Date.now() < deadline, `the job became active (it is ${state})`);
        await new Promise((r) => setTimeout(r, 50));
        ({ state } = (await (await fetch(`${base}/jobs/${id}`)).json()) as { state: string });
      }
      const cancel = await fetch(`${base}/jobs/${id}`, { method: 'DELETE' });
      assert.equal(cancel.status, 200);
      assert.equal(((await cancel.json()) as { state: string }).state, 'cancelled');
      const again = await fetch(`${base}/jobs/${id}`, { method: 'DELETE' });
      assert.equal(again.status, 409);
    });

    it('when a request comes again with its Idempotency-Key, then it gets the first job (replayed); another body with that key gets 422', async () => {
      const key = { 'Idempotency-Key': randomUUID() };
      const first = await post({ ms: 10 }, key);
      assert.equal(first.status, 202);
      const { id } = (await first.json()) as { id: string };
      const replay = await post({ ms: 10 }, key);
      assert.equal(replay.status, 202);
      assert.equal(replay.headers.get('idempotent-replayed'), 'true');
      assert.equal(((await replay.json()) as { id: string }).id, id);
      assert.equal((await post({ ms: 11 }, key)).status, 422);
      assert.equal((await post({ ms: 10 }, { 'Idempotency-Key': 'short' })).status, 400);
      assert.equal((await post({ ms: -1 })).status, 400);
    });
  });
});

/** The scratch app: what an Express developer writes around the copied folder. */
const MAIN = `
import express from 'express';
import { Redis } from 'ioredis';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import {
  createQueueOffloader,
  createRegistry,
  defineJob,
  jobsRouter,
  offloadErrors,
  requestOptions,
  sendAccepted,
  startRunner,
  consoleLogger,
} from './offload/index.js';

const nap = defineJob({
  name: 'nap',
  queue: 'naps',
  input: z.strictObject({ ms: z.number().int().min(0) }),
  async run({ ms }, ctx) {
    await ctx.progress(50);
    await sleep(ms, undefined, { signal: ctx.signal });
    return { slept: ms };
  },
});

const url = process.env.REDIS_URL ?? '';
const prefix = process.env.PREFIX ?? 'standalone';
const log = consoleLogger();
const registry = createRegistry([nap]);
const producer = new Redis(url, { enableOfflineQueue: false, maxRetriesPerRequest: 0 });
await new Promise((ready) => producer.once('ready', ready));
const offloader = createQueueOffloader({
  registry,
  connection: producer,
  eventsConnection: () => new Redis(url, { maxRetriesPerRequest: null }),
  prefix,
  log,
});
const worker = new Redis(url, { maxRetriesPerRequest: null });
const runner = startRunner({
  registry,
  queues: '*',
  connection: worker,
  prefix,
  concurrency: { default: 2 },
  lockMs: 30_000,
  stalledIntervalMs: 30_000,
  deps: {},
  log,
});

const app = express();
app.post('/naps', express.json(), async (req, res) => {
  const input = req.body as z.input<typeof nap.input>; // the offloader validates it
  sendAccepted(res, await offloader.enqueue(nap, input, requestOptions(req, input)));
});
app.use(jobsRouter({ offloader }));
app.use(offloadErrors);
const server = app.listen(0, '127.0.0.1', () => {
  console.log('listening on ' + String((server.address() as { port: number }).port));
});
process.once('SIGTERM', async () => {
  server.closeAllConnections();
  server.close();
  await runner.close(Date.now() + 1_000);
  await offloader.close();
  await Promise.all([producer.quit(), worker.quit()]);
});
`;
