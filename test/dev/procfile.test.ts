import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { devProcess, parseProcfile, ProcfileError } from '../../src/dev/procfile.js';

const exists = existsSync;
/** The first process of a one-line Procfile, mapped. */
const mapped = (line: string, env: Record<string, string> = {}) =>
  devProcess(parseProcfile(line)[0]!, { env, exists });

/** Every ```procfile block of the README: the Procfiles it tells readers to write. */
function readmeProcfiles(): string[] {
  const readme = readFileSync('README.md', 'utf8');
  return [...readme.matchAll(/^```procfile\n([\s\S]*?)^```/gm)].map((m) => m[1]!);
}

describe('the Procfile as npm run dev reads it', () => {
  it('when it is the repo Procfile, then release (the migrations), web and worker run their TypeScript sources under tsx, preload included', () => {
    const entries = parseProcfile(readFileSync('Procfile', 'utf8'));
    const processes = entries.map((e) => devProcess(e, { exists }));
    assert.deepEqual(
      processes.map((p) => p.type),
      ['release', 'web', 'worker'],
    );
    assert.equal(processes[0]!.args.at(-1), 'src/db/release.ts');
    const web = processes[1]!;
    const worker = processes[2]!;
    assert.deepEqual(web.args.slice(0, 2), ['--import', 'tsx']);
    assert.equal(web.args.at(-1), 'src/web.ts');
    assert.equal(worker.args.at(-1), 'workers/main.ts');
    // Every dist/ file (the telemetry preload too) is its source: nothing needs a build.
    for (const p of processes)
      assert.ok(!p.args.some((a) => a.includes('dist/')), p.args.join(' '));
  });

  it("when it is one of the README's Procfiles, then every process type maps, with its variables", () => {
    const procfiles = readmeProcfiles();
    assert.ok(procfiles.length > 0, 'the README shows a Procfile with several workers');
    for (const text of procfiles) {
      const entries = parseProcfile(text);
      const processes = entries.map((e) => devProcess(e, { exists }));
      assert.equal(processes.length, text.trim().split('\n').length, text);
      for (const p of processes) assert.deepEqual(p.args.slice(0, 2), ['--import', 'tsx']);
    }
  });

  it('when a line starts with VAR=value assignments, then they become that process’s environment', () => {
    const p = mapped(
      'mailer: WORKER_QUEUES=mail,webhooks WORKER_CONCURRENCY=4 node dist/workers/main.js',
    );
    assert.deepEqual(p, {
      type: 'mailer',
      env: { WORKER_QUEUES: 'mail,webhooks', WORKER_CONCURRENCY: '4' },
      args: ['--import', 'tsx', 'workers/main.ts'],
    });
  });

  it('when a value is quoted, then the quotes go and the spaces stay', () => {
    const p = mapped(`w: GREETING="hello there" node dist/workers/main.js`);
    assert.deepEqual(p.env, { GREETING: 'hello there' });
  });

  it('when node has a preload under dist/, then it maps to its source too, after tsx', () => {
    const p = mapped('web: node --import ./dist/src/config.js dist/src/web.js');
    assert.deepEqual(p.args, ['--import', 'tsx', '--import', './src/config.ts', 'src/web.ts']);
    const joined = mapped(
      'web: node --import=./dist/src/config.js --enable-source-maps dist/src/web.js',
    );
    assert.deepEqual(joined.args, [
      '--import',
      'tsx',
      '--import=./src/config.ts',
      '--enable-source-maps',
      'src/web.ts',
    ]);
  });

  it('when the line uses exec, ./dist, flags with = and script arguments, then all carry over', () => {
    const p = mapped('worker: exec node --max-old-space-size=512 ./dist/workers/main.js --verbose');
    assert.deepEqual(p.args, [
      '--import',
      'tsx',
      '--max-old-space-size=512',
      './workers/main.ts',
      '--verbose',
    ]);
  });

  it('when a word is $VAR, then it expands from the development environment', () => {
    const p = mapped('web: node dist/src/web.js --port $PORT', { PORT: '4000' });
    assert.deepEqual(p.args.slice(-2), ['--port', '4000']);
  });

  it('when a release line runs node, then it maps like the others', () => {
    const p = mapped('release: node dist/src/web.js');
    assert.equal(p.type, 'release');
  });

  describe('lines it cannot map are errors that name the line', () => {
    const refused: [string, RegExp][] = [
      [
        'web: npm start',
        /line 1 \("web: npm start"\).*"node dist\/<path>\.js" commands only, not "npm"/,
      ],
      ['web: node dist/src/web.js && echo hi', /shell syntax \(&&\)/],
      ['web: node src/web.js', /script src\/web\.js is not a dist\/<path>\.js file/],
      [
        'web: node dist/src/nowhere.js',
        /dist\/src\/nowhere\.js maps to src\/nowhere\.ts, which does not exist/,
      ],
      ['web: node --import ./dist/src/x.mjs dist/src/web.js', /cannot map \.\/dist\/src\/x\.mjs/],
      ['web: node', /script \(none\)/],
    ];
    for (const [line, why] of refused) {
      it(`when the line is "${line}", then the error says why`, () => {
        assert.throws(
          () => mapped(line),
          (error: unknown) => {
            assert.ok(error instanceof ProcfileError);
            assert.match(error.message, why);
            return true;
          },
        );
      });
    }

    it('when a line is not "<type>: <command>", then parsing fails naming its number', () => {
      assert.throws(
        () => parseProcfile('web: node dist/src/web.js\n\nthis is not a process\n'),
        /line 3/,
      );
    });

    it('when a type appears twice, then parsing fails', () => {
      assert.throws(
        () => parseProcfile('web: node dist/src/web.js\nweb: node dist/src/web.js'),
        /"web" appears twice/,
      );
    });

    it('when there are comments and blank lines, then they are skipped', () => {
      assert.deepEqual(
        parseProcfile('# processes\n\nweb: node dist/src/web.js\r\n').map((e) => [e.type, e.line]),
        [['web', 3]],
      );
    });
  });
});
