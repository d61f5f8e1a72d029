// `npm run jobs -- <command>` (in production: `node dist/src/jobs-cli.js <command>`): look at
// the queues and act on jobs from a terminal, like `celery inspect` and `celery call`. It
// reads the same configuration as the app (REDIS_URL, QUEUE_PREFIX...) and talks to Redis
// directly, so it works whether or not a web or worker process is running.
import { parseArgs } from 'node:util';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { quit, registry, tlsOf } from './process/boot.js';
import { ConfigError, loadConfig, type Config } from './config.js';
import {
  listDeadLetters,
  ReplayRefusedError,
  replayDeadLetter,
  UnknownQueueError,
  createQueueOffloader,
  InvalidJobInputError,
  QueueUnavailableError,
  retention,
  statusUrl,
  type Offloader,
} from './offload/index.js';
import { oldestWaitingMs } from './process/metrics.js';
import { createProducerConnection } from './redis/connections.js';

const USAGE = `usage: npm run jobs -- <command> [options]
       (from a build: node dist/src/jobs-cli.js <command> [options])

commands:
  queues                            each queue's job counts and latency (age of its oldest waiting job)
  show <id>                         a job's status, as JSON
  failed [queue] [--limit N] [--offset N]
                                    dead letters (jobs that failed for good), newest first
  replay <id> [--input '<json>']    run a failed job again under its id, optionally with corrected input
  cancel <id>                       cancel a job, in whichever worker process runs it
  schedules                         declared schedules, and their next run as Redis has it
  trigger <job> [--input '<json>']  enqueue a job now (a scheduled job gets its schedule's input)

Configuration comes from the environment, as for the app (REDIS_URL, QUEUE_PREFIX: see .env.example).`;

/** How long to wait for Redis before giving up. */
const CONNECT_MS = 5_000;

/** A problem to report in one line, exit code 1. */
class CliError extends Error {}

interface Cli {
  config: Config;
  connection: Redis;
  offloader: Offloader;
  queues: Queue[];
  /** Lines for stdout. */
  out: (line?: string) => void;
}

type Options = { input?: string; limit?: string; offset?: string };

const commands: Record<string, (cli: Cli, args: string[], options: Options) => Promise<void>> = {
  async queues({ queues, out }) {
    const now = Date.now();
    const rows = await Promise.all(
      queues.map(async (queue) => {
        const counts = await queue.getJobCounts(
          'wait',
          'prioritized',
          'delayed',
          'active',
          'completed',
          'failed',
        );
        const n = (state: string) => counts[state] ?? 0;
        return [
          queue.name,
          String(n('wait') + n('prioritized')),
          String(n('delayed')),
          String(n('active')),
          String(n('completed')),
          String(n('failed')),
          seconds(await oldestWaitingMs(queue, now)),
        ];
      }),
    );
    out(table(['QUEUE', 'WAITING', 'DELAYED', 'ACTIVE', 'COMPLETED', 'FAILED', 'LATENCY'], rows));
  },

  async show({ offloader, out }, [id]) {
    const status = await offloader.status(required(id, 'show <id>'));
    if (!status) throw new CliError(`no job ${id}`);
    out(JSON.stringify(status, null, 2));
  },

  async failed({ queues, out }, [queue], options) {
    const limit = whole(options.limit ?? '20', '--limit');
    const offset = whole(options.offset ?? '0', '--offset');
    const page = await listDeadLetters(
      { registry, queues },
      { ...(queue === undefined ? {} : { queue }), limit, offset },
    );
    if (page.jobs.length === 0) {
      out(offset === 0 ? 'no failed jobs' : 'no more failed jobs');
      return;
    }
    out(
      table(
        ['ID', 'JOB', 'QUEUE', 'ATTEMPTS', 'FAILED AT', 'ERROR'],
        page.jobs.map((job) => [
          job.id,
          job.name,
          job.queue,
          String(job.attempts),
          job.failedAt,
          oneLine(job.error),
        ]),
      ),
    );
    if (page.more) out(`more: add --offset ${offset + page.jobs.length}`);
  },

  async replay({ queues, out }, [id], options) {
    const input = options.input === undefined ? undefined : json(options.input);
    const status = await replayDeadLetter({ registry, queues }, required(id, 'replay <id>'), input);
    if (!status) throw new CliError(`no job ${id}`);
    out(`replayed ${status.name} ${status.id}: ${status.state} (status: ${statusUrl(status.id)})`);
  },

  async cancel({ offloader, out }, [id]) {
    const cancelled = await offloader.cancel(required(id, 'cancel <id>'));
    if (!cancelled) throw new CliError(`no job ${id}`);
    const { status, changed } = cancelled;
    // Cancelling again is refused, as DELETE /jobs/:id's 409 is: nothing changed.
    if (!changed) throw new CliError(`job ${id} is already ${status.state}`);
    out(`cancelled ${status.name} ${status.id}`);
  },

  async schedules({ queues, out }) {
    const inRedis = new Map<string, { queue: string; next?: number }>();
    for (const queue of queues) {
      for (const scheduler of await queue.getJobSchedulers()) {
        inRedis.set(scheduler.key, { queue: queue.name, next: scheduler.next });
      }
    }
    const rows = registry.jobs.flatMap((job) => {
      if (!job.schedule) return [];
      const stored = inRedis.get(job.name);
      inRedis.delete(job.name);
      const every =
        'everyMs' in job.schedule
          ? `every ${seconds(job.schedule.everyMs)}`
          : `cron ${job.schedule.cron} (${job.schedule.tz ?? 'UTC'})`;
      const next = stored?.next
        ? new Date(stored.next).toISOString()
        : 'not set: a worker sets it when it starts';
      return [[job.name, job.queue, every, next]];
    });
    for (const [key, stored] of inRedis) {
      rows.push([key, stored.queue, 'not declared', 'removed when a worker starts']);
    }
    out(rows.length === 0 ? 'no schedules' : table(['JOB', 'QUEUE', 'SCHEDULE', 'NEXT RUN'], rows));
  },

  async trigger({ offloader, out }, [name], options) {
    const job = registry.get(required(name, 'trigger <job>'));
    if (!job) {
      throw new CliError(
        `no job named "${name}" (known: ${registry.jobs.map((j) => j.name).join(', ')})`,
      );
    }
    const input = options.input === undefined ? (job.schedule?.input ?? {}) : json(options.input);
    const accepted = await offloader.enqueue(job, input);
    out(
      `enqueued ${accepted.name} ${accepted.id}: ${accepted.state} (status: ${statusUrl(accepted.id)})`,
    );
  },
};

async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        input: { type: 'string' },
        limit: { type: 'string' },
        offset: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n\n${USAGE}\n`);
    return 1;
  }
  const { positionals, values } = parsed;
  const [name, ...args] = positionals;
  if (values.help || name === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const command = name === undefined ? undefined : commands[name];
  if (!command) {
    process.stderr.write(
      `${name === undefined ? 'no command' : `unknown command "${name}"`}\n\n${USAGE}\n`,
    );
    return 1;
  }

  let config: Config;
  try {
    // The one place the CLI reads the environment, as src/web.ts does.
    config = loadConfig(process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      return 1;
    }
    throw error;
  }
  // Logs go to stderr: stdout is the command's output, for people and pipes.
  const log = pino({ name: 'jobs', level: config.LOG_LEVEL }, pino.destination(2));
  const connection = createProducerConnection(config.REDIS_URL, log, tlsOf(config));
  const prefix = config.QUEUE_PREFIX;
  const queues = registry.queues.map((queueName) => {
    const queue = new Queue(queueName, { connection, prefix });
    queue.on('error', () => undefined); // the connection reports its own errors
    return queue;
  });
  const offloader = createQueueOffloader({
    registry,
    connection,
    eventsConnection: () => {
      throw new Error('the CLI does not watch jobs');
    },
    prefix,
    log,
    retention: retention(config.RESULT_TTL, config.FAILED_TTL),
  });
  try {
    await connected(connection, config.REDIS_URL);
    await command(
      {
        config,
        connection,
        offloader,
        queues,
        out: (line = '') => process.stdout.write(`${line}\n`),
      },
      args,
      values,
    );
    return 0;
  } catch (error) {
    process.stderr.write(`${describe(error)}\n`);
    return 1;
  } finally {
    await Promise.all(queues.map((queue) => queue.close()));
    await offloader.close();
    await quit(connection);
  }
}

/** What went wrong, in a line or two: never a stack trace for an expected problem. */
function describe(error: unknown): string {
  if (error instanceof CliError || error instanceof ReplayRefusedError) return error.message;
  if (error instanceof UnknownQueueError || error instanceof QueueUnavailableError) {
    return error.message;
  }
  if (error instanceof InvalidJobInputError) {
    return `invalid input:\n  ${error.problems.join('\n  ')}`;
  }
  return error instanceof Error ? (error.stack ?? error.message) : String(error);
}

async function connected(connection: Redis, url: string): Promise<void> {
  if (connection.status === 'ready') return;
  const ready = new Promise<boolean>((resolve) => connection.once('ready', () => resolve(true)));
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), CONNECT_MS);
  });
  const ok = await Promise.race([ready, timeout]);
  clearTimeout(timer);
  if (!ok) {
    const { host } = new URL(url); // never the password
    throw new CliError(`cannot reach Redis at ${host} (REDIS_URL) within ${CONNECT_MS / 1000} s`);
  }
}

function required(value: string | undefined, usage: string): string {
  if (value === undefined || value === '') throw new CliError(`usage: ${usage}`);
  return value;
}

function whole(text: string, option: string): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new CliError(`${option} must be a whole number`);
  }
  return value;
}

function json(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new CliError(`--input is not JSON: ${(error as Error).message}`);
  }
}

const seconds = (ms: number) =>
  ms >= 3_600_000 && ms % 3_600_000 === 0
    ? `${ms / 3_600_000}h`
    : ms >= 60_000 && ms % 60_000 === 0
      ? `${ms / 60_000}m`
      : `${(ms / 1000).toFixed(1)}s`;

const oneLine = (text: string, max = 80) => {
  const line = text.split('\n', 1)[0] ?? '';
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
};

/** Columns padded to their widest cell; numbers are right-aligned. */
function table(header: string[], rows: string[][]): string {
  const widths = header.map((title, i) =>
    Math.max(title.length, ...rows.map((row) => (row[i] ?? '').length)),
  );
  const numeric = header.map(
    (_, i) => rows.length > 0 && rows.every((row) => /^\d+$/.test(row[i] ?? '')),
  );
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => (numeric[i] ? cell.padStart(widths[i] ?? 0) : cell.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

process.exitCode = await main(process.argv.slice(2));
