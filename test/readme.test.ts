// The README's "Add a job in three steps" is code a reader copies: this test copies it too, into
// a scratch tree beside the real one, and typechecks and lints it with the project's settings,
// so the example cannot drift from what compiles (a deprecated zod call fails the lint here).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

const SCRATCH = join('test-output', 'readme');
/** From a file in the scratch tree (test-output/readme/jobs/x.ts) back to the project's root. */
const UP = '../../../';

/** The ```ts blocks of the README section `heading`, dedented. */
function codeBlocks(heading: string): string[] {
  const readme = readFileSync('README.md', 'utf8');
  const start = readme.indexOf(`\n## ${heading}\n`);
  assert.ok(start >= 0, `the README has a "${heading}" section`);
  const end = readme.indexOf('\n## ', start + 1);
  const section = readme.slice(start, end < 0 ? undefined : end);
  return [...section.matchAll(/^( *)```ts\n([\s\S]*?)^\1```$/gm)].map(
    ([, indent = '', body = '']) => body.replace(new RegExp(`^${indent}`, 'gm'), ''),
  );
}

const run = (args: string[]) => {
  const result = spawnSync(process.execPath, args, { encoding: 'utf8' });
  return { ok: result.status === 0, output: `${result.stdout}${result.stderr}` };
};

describe('the README’s "Add a job in three steps"', function () {
  this.timeout(180_000);
  const [job = '', index = '', route = '', mount = ''] = codeBlocks('Add a job in three steps');

  before(() => {
    rmSync(SCRATCH, { recursive: true, force: true });
    const files: Record<string, string> = {
      // Step 1 as written; its imports of src/ point back into the real tree.
      'jobs/resize-avatar.ts': job.replaceAll("'../src/", `'${UP}src/`),
      // Step 2 as written; the jobs that already exist are the real ones.
      'jobs/index.ts': index.replace(
        /'\.\/(?!resize-avatar\.js)([\w-]+)\.js'/g,
        `'${UP}jobs/$1.js'`,
      ),
      // Step 3 as written.
      'routes/avatars.ts': route.replaceAll("'../src/", `'${UP}src/`),
      'tsconfig.json': JSON.stringify({
        extends: '../../tsconfig.json',
        // noEmit again here: should `extends` ever miss, tsc must not write .js beside the sources.
        compilerOptions: { rootDir: '../..', noEmit: true },
        // request-log.ts adds req.id and req.log to Express's Request, as in the real build.
        include: ['jobs', 'routes', '../../src/http/request-log.ts'],
      }),
    };
    for (const [path, text] of Object.entries(files)) {
      mkdirSync(dirname(join(SCRATCH, path)), { recursive: true });
      writeFileSync(join(SCRATCH, path), text);
    }
  });

  it('when its code blocks are read, then there are the job, the job list, the route and the mount line', () => {
    assert.match(job, /name: 'resize-avatar'/);
    assert.match(index, /import resizeAvatar from '\.\/resize-avatar\.js';/);
    assert.match(route, /offloader\.enqueue\(resizeAvatar, \{ userId \}, enqueueOptions\(req\)\)/);
    assert.match(mount, /^app\.use\(avatarsRouter\(\{ offloader \}\)\);$/m);
  });

  it('when the blocks are typechecked with the project’s tsconfig, then there is no error', () => {
    const { ok, output } = run([
      'node_modules/typescript/bin/tsc',
      '-p',
      join(SCRATCH, 'tsconfig.json'),
    ]);
    assert.ok(ok, output);
  });

  it('when the blocks are linted with the project’s ESLint config, then there is no problem (no deprecated zod)', () => {
    const files = ['jobs/resize-avatar.ts', 'jobs/index.ts', 'routes/avatars.ts'].map((f) =>
      join(SCRATCH, f),
    );
    // --no-ignore: test-output/ is ignored by the config, as scratch output should be.
    const { ok, output } = run(['node_modules/eslint/bin/eslint.js', '--no-ignore', ...files]);
    assert.ok(ok, output);
  });

  it('when the mount line is placed as step 3 says, then src/app.ts has the anchors it names', () => {
    const app = readFileSync('src/app.ts', 'utf8');
    const exported = /export function (\w+)\(/.exec(route)?.[1];
    assert.equal(
      exported,
      /app\.use\((\w+)\(/.exec(mount)?.[1],
      'the mount line calls the route’s export',
    );
    const json = app.indexOf('app.use(jsonBody(');
    assert.ok(
      json >= 0 && json < app.indexOf('app.use(notFound)'),
      'the JSON parser comes before notFound',
    );
    assert.match(
      app,
      /app\.use\(signupRouter\(\{ offloader, deps \}\)\)/,
      'the routers that take work',
    );
  });
});
