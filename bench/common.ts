// Helpers the suites share: numbers, the machine header, RESULTS.md sections, and clean-up of
// the processes a suite starts (also on Ctrl-C and crashes, see bench/run.ts).
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { hasRedisServer, startRedis } from '../test/harness/redis.js';

// `npm run bench` runs the bench compiled by tsc (dist-bench/, tsconfig.bench.json), as
// production runs dist/: tsx gives every function expression a keepNames wrapper call (3 µs of
// an enqueue in a producer profile) that only our TypeScript pays (bare BullMQ, Express and the
// peers are plain JavaScript) and production never does. `node --import tsx bench/run.ts` works
// as well.
const compiled = !import.meta.url.endsWith('.ts');

/** A path in the repository. */
export const root = (path: string) =>
  fileURLToPath(new URL(`${compiled ? '../../' : '../'}${path}`, import.meta.url));
/** A TypeScript file to fork, by its path in the repository: its compiled twin when compiled. */
export const script = (path: string) =>
  compiled
    ? fileURLToPath(new URL(`../${path.replace(/\.ts$/, '.js')}`, import.meta.url))
    : root(path);
/** The `execArgv` that lets a forked script load TypeScript: none when compiled. */
export const loader: readonly string[] = compiled ? [] : ['--import', 'tsx'];
/** How a forked script runs, for RESULTS.md: `node dist-bench/workers/main.js`. */
export const command = (path: string) =>
  compiled ? `node dist-bench/${path.replace(/\.ts$/, '.js')}` : `node --import tsx ${path}`;
export const resultsFile = root('bench/RESULTS.md');

/**
 * The node flags a Procfile process type runs with (`--max-semi-space-size=4`), without its
 * `--import` preloads: what the memory suite gives the processes it measures, so they run as
 * deployed.
 */
export function procfileNodeFlags(type: 'web' | 'worker'): string[] {
  const line = readFileSync(root('Procfile'), 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${type}:`));
  const words =
    line
      ?.slice(type.length + 1)
      .trim()
      .split(/\s+/) ?? [];
  const flags: string[] = [];
  for (let i = words.indexOf('node') + 1; i < words.length && words[i]!.startsWith('-'); i++) {
    if (words[i] === '--import') i++;
    else flags.push(words[i]!);
  }
  return flags;
}

/** A run writes RESULTS.md only with at least this many rounds (and every variant). */
export const MIN_ROUNDS_TO_WRITE = 3;

export const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};
export const fixed = (n: number, digits = 2) => (Number.isFinite(n) ? n.toFixed(digits) : 'n/a');
export const mb = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
export const version = (pkg: string) =>
  (
    JSON.parse(readFileSync(root(`node_modules/${pkg}/package.json`), 'utf8')) as {
      version: string;
    }
  ).version;

export interface Started {
  at: Date;
  load: number;
}
export const start = (): Started => ({ at: new Date(), load: os.loadavg()[0]! });

/** Date, machine and versions: the first lines of every suite's section. */
export function header(started: Started, versions: string): string[] {
  const cpus = os.cpus();
  return [
    `- Date: ${started.at.toISOString()}`,
    `- Machine: ${cpus.length} × ${cpus[0]?.model ?? 'unknown CPU'}, ${mb(os.totalmem())} RAM, ` +
      `${os.platform()} ${os.release()}; 1-min load average ${started.load.toFixed(2)} at start, ` +
      `${os.loadavg()[0]!.toFixed(2)} at end`,
    `- Versions: Node ${process.version}, ${versions}`,
  ];
}

const TITLE = [
  '# Benchmark results',
  '',
  'Written by `npm run bench` (bench/run.ts); see bench/README.md. Do not edit by hand: each',
  'suite rewrites only its own section, between its markers, and leaves the others as they were.',
  '',
].join('\n');

/** Replaces `suite`'s section of bench/RESULTS.md (or adds it at the end). */
export function writeSection(suite: string, markdown: string): void {
  const begin = `<!-- suite:${suite} -->`;
  const end = `<!-- /suite:${suite} -->`;
  const section = `${begin}\n\n${markdown.trim()}\n\n${end}`;
  let text = existsSync(resultsFile) ? readFileSync(resultsFile, 'utf8') : '';
  if (!text.includes('<!-- suite:')) text = TITLE; // missing, or the old one-suite layout
  const from = text.indexOf(begin);
  const to = text.indexOf(end);
  text =
    from >= 0 && to > from
      ? text.slice(0, from) + section + text.slice(to + end.length)
      : `${text.trimEnd()}\n\n${section}\n`;
  writeFileSync(resultsFile, text);
  console.log(`\nwrote the ${suite} section of ${resultsFile}`);
}

// --- Clean-up: every process and temp dir a suite starts is stopped once, in reverse order ------

const cleanups: (() => Promise<void> | void)[] = [];
export const onCleanup = (step: () => Promise<void> | void) => {
  cleanups.push(step);
};
/** Runs (and forgets) every clean-up step registered so far; a failing step does not stop it. */
export async function cleanup(): Promise<void> {
  for (let step = cleanups.pop(); step; step = cleanups.pop()) {
    try {
      await step();
    } catch (error) {
      console.error('bench clean-up step failed:', error);
    }
  }
}

// --- A suite's own Redis: the project's flags (AOF everysec, noeviction), a free port ---------

/** A private redis-server, an admin connection to it, its version and a temp dir: all cleaned up. */
export async function suiteRedis(suite: string) {
  if (!hasRedisServer()) throw new Error('redis-server is not on PATH');
  const redis = await startRedis();
  onCleanup(() => redis.destroy());
  const dir = await mkdtemp(join(os.tmpdir(), `offload-bench-${suite}-`));
  onCleanup(() => rm(dir, { recursive: true, force: true }));
  const admin = new Redis(redis.url, { maxRetriesPerRequest: null });
  onCleanup(() => admin.disconnect());
  const redisVersion = /redis_version:([^\r\n]+)/.exec(await admin.info('server'))?.[1] ?? '?';
  return { redis, dir, admin, redisVersion };
}

/**
 * A round's variants in order: as given in odd rounds, reversed in even ones (A B C, C B A, …).
 * What one variant leaves behind (garbage to collect, a warm or cold cache, Redis memory to
 * free) then falls before each variant alike instead of always before the later one.
 */
export const inRoundOrder = <T>(variants: readonly T[], round: number): readonly T[] =>
  round % 2 ? variants : [...variants].reverse();

/**
 * The median over rounds of `a / b`, each taken within one round (its variants ran close
 * together): this machine's speed drifts between rounds, and a per-round ratio cancels the
 * share of that drift the variants of a round had in common. NaN when no round has both.
 */
export function roundRatio<Row extends { round: number }>(
  rows: readonly Row[],
  a: (row: Row) => boolean,
  b: (row: Row) => boolean,
  value: (row: Row) => number,
): number {
  const ratios = [...new Set(rows.map((row) => row.round))].flatMap((round) => {
    const x = rows.find((row) => row.round === round && a(row));
    const y = rows.find((row) => row.round === round && b(row));
    return x && y ? [value(x) / value(y)] : [];
  });
  return ratios.length ? median(ratios) : NaN;
}
