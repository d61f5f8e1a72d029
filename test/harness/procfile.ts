import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { Watched } from './watched.js';
import { GENEROUS_RATE_LIMITS } from './limits.js';

export type LogLine = Record<string, unknown> & { msg?: string };

/** The Procfile's process types and their commands, as a PaaS reads them. */
export function readProcfile(path = 'Procfile'): Map<string, string> {
  const entries = readFileSync(path, 'utf8')
    .split('\n')
    .map((line) => /^([\w-]+):\s*(.+)$/.exec(line.trim()))
    .filter((match) => match !== null)
    .map((match) => [match[1]!, match[2]!] as const);
  return new Map(entries);
}

export interface Proc {
  child: ChildProcess;
  lines: LogLine[];
  /** Resolves with the first log line (JSON, from stdout) `match` accepts, past or future. */
  waitForLog(match: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  /** Resolves with the exit code (or the signal that ended it). */
  exited: Promise<number | NodeJS.Signals>;
  stop(signal?: NodeJS.Signals): Promise<number | NodeJS.Signals>;
}

/**
 * Starts one Procfile process type exactly as the platform would (its command, split into
 * words: these Procfile lines use no shell features), with `env` added to this environment.
 */
export function startProcess(type: string, env: Record<string, string>): Proc {
  const command = readProcfile().get(type);
  if (!command) throw new Error(`the Procfile has no "${type}" process`);
  const [bin = '', ...args] = command.split(/\s+/);
  const script = args.find((a) => a.endsWith('.js'));
  if (script && !existsSync(script)) {
    throw new Error(`${script} is missing: run "npm run build" first (npm test does)`);
  }
  const child = spawn(bin, args, {
    env: { ...process.env, ...GENEROUS_RATE_LIMITS, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines = new Watched<LogLine>();
  const output: string[] = [];
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream }).on('line', (text) => {
      output.push(text);
      try {
        lines.push(JSON.parse(text) as LogLine);
      } catch {
        // not a log line (a crash trace): kept in `output` for the error message
      }
    });
  }
  const exited = once(child, 'exit').then(
    ([code, signal]) => (code ?? signal) as number | NodeJS.Signals,
  );
  return {
    child,
    lines: lines.items,
    exited,
    waitForLog: (match, timeoutMs = 15_000) =>
      lines.waitFor(match, {
        timeoutMs,
        gone: exited,
        describe: () => `${type} did not log that. Output:\n${output.slice(-30).join('\n')}`,
      }),
    stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

/**
 * How long `proc` took to shut down, by its own clock (its 'stopped' log line: from the signal
 * to its exit). The parent's clock would add however long a loaded machine takes to deliver
 * the signal and the exit, which is not what a shutdown test is about.
 */
export async function stoppedIn(proc: Proc): Promise<number> {
  const out = proc.child.stdout;
  if (out && !out.closed) await once(out, 'close'); // the last lines are read
  const stopped = proc.lines.find((l) => l.msg === 'stopped');
  if (typeof stopped?.durationMs !== 'number') throw new Error('no "stopped" log line');
  return stopped.durationMs;
}
