// The Procfile as `npm run dev` reads it: each process type's command, mapped from the built
// JavaScript it runs in production (`node … dist/<path>.js`) to the TypeScript source under tsx.
// A line it cannot map is an error naming that line: a worker silently left out of development
// looks like a stuck queue, not like a launcher problem.
import { parse } from 'shell-quote';

export interface ProcfileEntry {
  type: string;
  command: string;
  /** 1-based, for error messages. */
  line: number;
}

/** How to run one process type in development: `node <args>` with `env` added. */
export interface DevProcess {
  type: string;
  /** The leading `VAR=value` assignments of the line. */
  env: Record<string, string>;
  /** node's arguments: `--import tsx`, the line's node flags, the .ts script and its arguments. */
  args: string[];
}

export class ProcfileError extends Error {
  override name = 'ProcfileError';
}

const LINE = /^([A-Za-z0-9_-]+):\s*(.*)$/;
const ASSIGNMENT = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/s;
/** `dist/<path>.js`, alone or as a flag's value (`--import=./dist/x.js`), with its `./` if any. */
const BUILT = /^(.*?)(\.\/)?dist\/([^\s]+)\.js$/;
/** node flags whose value is the next word (`--import ./x.js`); others use `=` or take none. */
const VALUE_FLAGS = new Set([
  '--import',
  '--require',
  '-r',
  '--loader',
  '--experimental-loader',
  '--env-file',
  '--env-file-if-exists',
  '--conditions',
  '-C',
  '--title',
  '--inspect-port',
  '--stack-size',
]);

/** The process types of a Procfile, in order. Blank lines and `#` comments are skipped. */
export function parseProcfile(text: string): ProcfileEntry[] {
  const entries: ProcfileEntry[] = [];
  text.split(/\r?\n/).forEach((raw, index) => {
    const trimmed = raw.trim();
    if (trimmed === '' || trimmed.startsWith('#')) return;
    const match = LINE.exec(trimmed);
    const line = index + 1;
    if (!match?.[1] || !match[2]) {
      throw new ProcfileError(`Procfile line ${line} is not "<type>: <command>": ${trimmed}`);
    }
    if (entries.some((e) => e.type === match[1])) {
      throw new ProcfileError(`Procfile line ${line}: process type "${match[1]}" appears twice`);
    }
    entries.push({ type: match[1], command: match[2], line });
  });
  return entries;
}

/**
 * Maps one Procfile command to its development form. `env` expands `$VARS` as the shell would;
 * `exists` says whether a mapped .ts file is there (so a typo fails here, not as a crash loop).
 */
export function devProcess(
  entry: ProcfileEntry,
  {
    env = {},
    exists,
  }: { env?: Record<string, string | undefined>; exists: (path: string) => boolean },
): DevProcess {
  const fail = (why: string) =>
    new ProcfileError(`Procfile line ${entry.line} ("${entry.type}: ${entry.command}"): ${why}`);
  const words: string[] = [];
  for (const token of parse(entry.command, env)) {
    if (typeof token === 'string') words.push(token);
    else if ('comment' in token) break;
    else throw fail(`npm run dev cannot run shell syntax (${token.op}); use plain words`);
  }

  const assigned: Record<string, string> = {};
  let at = 0;
  for (let m = ASSIGNMENT.exec(words[at] ?? ''); m; m = ASSIGNMENT.exec(words[++at] ?? '')) {
    assigned[m[1]!] = m[2]!;
  }
  if (words[at] === 'exec') at++;
  const bin = words[at] ?? '';
  if (bin !== 'node' && !bin.endsWith('/node')) {
    throw fail(`npm run dev runs "node dist/<path>.js" commands only, not "${bin}"`);
  }

  const toSource = (word: string) => {
    const match = BUILT.exec(word);
    if (!match) {
      if (/(^|[=/])dist\//.test(word)) throw fail(`cannot map ${word} to a TypeScript source`);
      return word;
    }
    const [, prefix = '', dot = '', path = ''] = match;
    const source = `${path}.ts`;
    if (!exists(source)) throw fail(`${word} maps to ${source}, which does not exist`);
    return `${prefix}${dot}${source}`;
  };

  const flags: string[] = [];
  let i = at + 1;
  for (; i < words.length && words[i]!.startsWith('-'); i++) {
    flags.push(toSource(words[i]!));
    if (VALUE_FLAGS.has(words[i]!) && i + 1 < words.length) flags.push(toSource(words[++i]!));
  }
  const script = words[i];
  if (script === undefined || !BUILT.test(script)) {
    throw fail(`its script ${script ?? '(none)'} is not a dist/<path>.js file`);
  }
  // tsx first: the line's own preloads (--import ./src/telemetry.ts) are TypeScript too.
  return {
    type: entry.type,
    env: assigned,
    args: ['--import', 'tsx', ...flags, toSource(script), ...words.slice(i + 1)],
  };
}
