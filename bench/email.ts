// The email suite (the "work jobs" row for send-email; thumbnails and reports have their own
// suites): welcome emails through a real worker process (workers/main.ts, send-email jobs on
// the `mail` queue) against a bare nodemailer loop sending the same message in this process,
// both to a local SMTP server, both with the same number in flight; and, as a reference, a bare
// BullMQ Worker sending the same mail (bench/bare-mail-worker.ts). Run by bench/run.ts
// (`npm run bench -- --suite email`).
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { Queue } from 'bullmq';
import nodemailer from 'nodemailer';
import { sendEmail } from '../jobs/index.js';
import { loadConfig } from '../src/config.js';
import { closeDeps, createDeps } from '../src/deps.js';
import { createLogger } from '../src/logger.js';
import { jobOptions } from '../src/offload/index.js';
import {
  fixed,
  header,
  median,
  roundRatio,
  MIN_ROUNDS_TO_WRITE,
  onCleanup,
  start,
  suiteRedis,
  version,
  writeSection,
  inRoundOrder,
  command,
  loader,
  script,
} from './common.js';
import { bareWelcome } from './bare-mail.js';
import { startSmtpSink } from './smtp-sink.js';
import type { ProbeReply } from './worker-probe.js';
import {
  completionsOf,
  probe,
  producerFor,
  startWorker,
  stopWorker,
  type Completions,
} from './worker-process.js';

const TARGET = 0.85;
const INPUT = { template: 'welcome', to: 'ada@example.com', name: 'Ada Lovelace' } as const;

export interface EmailOptions {
  rounds: number;
  /** Emails per variant per round. */
  mails: number;
  /** WORKER_CONCURRENCY, and the bare loop's mails in flight. */
  concurrency: number;
}

/** BullMQ prefix of the bare BullMQ reference: its worker never sees offload's jobs. */
const BARE_PREFIX = 'bench-bare';

interface Round {
  variant: 'bare' | 'bare-bullmq' | 'offload';
  round: number;
  seconds: number;
  mails: number;
  /** CPU ms per mail of the process doing the work. */
  cpuMs: number;
  lag?: ProbeReply['lag'];
}

/** Runs the email suite; true when the run is valid and the target is met. */
export async function runEmail(options: EmailOptions): Promise<boolean> {
  const { rounds, mails, concurrency } = options;
  if (![rounds, mails, concurrency].every((n) => Number.isInteger(n) && n >= 1)) {
    throw new Error('bad email options');
  }
  const started = start();
  const { redis, dir } = await suiteRedis('email');

  // A local SMTP server that takes every message at once (bench/smtp-sink.ts says why not
  // smtp-server here).
  const smtp = await startSmtpSink();
  const smtpUrl = smtp.url;

  const env = {
    REDIS_URL: redis.url,
    QUEUE_PREFIX: 'bench',
    OFFLOAD_MODE: 'queue',
    SMTP_URL: smtpUrl,
    STORAGE_DIR: join(dir, 'storage'),
    OUTBOX_DIR: join(dir, 'outbox'),
    SIGNING_SECRET: randomBytes(32).toString('base64url'),
    WORKER_QUEUES: 'mail',
    WORKER_CONCURRENCY: String(concurrency),
    LOG_LEVEL: 'info',
  };
  const config = loadConfig({ ...env, LOG_LEVEL: 'warn' });
  const log = createLogger(config.LOG_LEVEL, 'bench');
  const deps = createDeps(config);
  onCleanup(() => closeDeps(deps));
  const { offloader, completions } = await producerFor(
    config,
    log,
    deps,
    redis.port,
    sendEmail.queue,
  );
  const worker = await startWorker(
    { ...process.env, ...env, NODE_ENV: 'production' },
    { probe: true },
  );

  // bare: nodemailer as the app's mailer uses it (a transport from the URL, no pool), the
  // message the welcome template renders, sent `concurrency` at a time.
  const transport = nodemailer.createTransport(smtpUrl);
  onCleanup(() => transport.close());
  const message = bareWelcome(config);
  async function bare(round: number, count: number): Promise<Round> {
    const cpu = process.cpuUsage();
    const begin = performance.now();
    let next = 0;
    const lane = async () => {
      for (let i = next++; i < count; i = next++) {
        await transport.sendMail(message(INPUT.to, INPUT.name));
      }
    };
    await Promise.all(Array.from({ length: concurrency }, lane));
    const seconds = (performance.now() - begin) / 1000;
    const { user, system } = process.cpuUsage(cpu);
    return { variant: 'bare', round, seconds, mails: count, cpuMs: (user + system) / 1000 / count };
  }
  /** Enqueues `count` mails with `add`, timed to the last one's completion in `child`. */
  async function queued(
    variant: Round['variant'],
    round: number,
    count: number,
    child: ChildProcess,
    done: Completions,
    add: () => Promise<string>,
  ): Promise<Round> {
    const before = await probe(child);
    const begin = performance.now();
    const ids = await Promise.all(Array.from({ length: count }, add));
    const { end } = await done.all(ids, child);
    const after = await probe(child);
    return {
      variant,
      round,
      seconds: (end - begin) / 1000,
      mails: count,
      cpuMs: (after.cpu - before.cpu) / 1000 / count,
      lag: after.lag,
    };
  }
  const offload = (round: number, count: number) =>
    queued('offload', round, count, worker.child, completions, async () => {
      return (await offloader.enqueue(sendEmail, INPUT)).id;
    });

  // bare BullMQ (reference): bare `queue.add`s with the app's job options, a bare Worker.
  const bareWorker = fork(script('bench/bare-mail-worker.ts'), [], {
    execArgv: [...loader, '--import', pathToFileURL(script('bench/worker-probe.ts')).href],
    env: {
      ...process.env,
      NODE_ENV: 'production',
      BENCH_REDIS_URL: redis.url,
      BENCH_PREFIX: BARE_PREFIX,
      BENCH_CONCURRENCY: String(concurrency),
      SMTP_URL: smtpUrl,
    },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  onCleanup(async () => {
    await stopWorker(bareWorker);
  });
  await once(bareWorker, 'message');
  const bareQueue = new Queue(sendEmail.queue, {
    connection: { host: '127.0.0.1', port: redis.port },
    prefix: BARE_PREFIX,
  });
  onCleanup(() => bareQueue.close());
  const bareCompletions = await completionsOf(sendEmail.queue, redis.port, BARE_PREFIX);
  const addOptions = jobOptions(sendEmail);
  const bareBullmq = (round: number, count: number) =>
    queued('bare-bullmq', round, count, bareWorker, bareCompletions, async () => {
      const id = randomUUID();
      await bareQueue.add(sendEmail.name, { input: INPUT }, { ...addOptions, jobId: id });
      return id;
    });
  const show = (r: Round) =>
    console.log(
      `${r.round ? `round ${r.round}` : 'warm-up'}  ${r.variant.padEnd(11)} ` +
        `${fixed(r.mails / r.seconds, 0).padStart(5)} mails/s  cpu ${fixed(r.cpuMs, 2)} ms/mail` +
        (r.lag ? `  lag p99 ${fixed(r.lag.p99, 0)} ms, max ${fixed(r.lag.max, 0)} ms` : ''),
    );

  const receivedBefore = await smtp.received();
  const variants = [bare, bareBullmq, offload];
  for (const run of variants) show(await run(0, Math.min(mails, 200)));
  const results: Round[] = [];
  for (let round = 1; round <= rounds; round++) {
    for (const run of inRoundOrder(variants, round)) {
      const r = await run(round, mails);
      results.push(r);
      show(r);
    }
  }
  const expectedMails = variants.length * (Math.min(mails, 200) + rounds * mails);
  const receivedMails = (await smtp.received()) - receivedBefore;
  const mailsOk = receivedMails === expectedMails;
  const failedAttempts = worker.failedAttempts;
  const exit = await stopWorker(worker.child);
  const bareExit = await stopWorker(bareWorker);

  const of = (variant: Round['variant']) => results.filter((r) => r.variant === variant);
  const rate = (variant: Round['variant']) => median(of(variant).map((r) => r.mails / r.seconds));
  const ratioOf = (a: Round['variant'], b: Round['variant']) =>
    roundRatio(
      results,
      (r) => r.variant === a,
      (r) => r.variant === b,
      (r) => r.mails / r.seconds,
    );
  const ratio = ratioOf('offload', 'bare');
  const lag = (variant: Round['variant']) =>
    `${fixed(median(of(variant).map((r) => r.lag?.p99 ?? NaN)), 0)} / ` +
    fixed(median(of(variant).map((r) => r.lag?.max ?? NaN)), 0);
  const stalled = completions.stalled + bareCompletions.stalled;
  const valid = mailsOk && failedAttempts === 0 && stalled === 0 && exit === 0 && bareExit === 0;
  const ok = valid && ratio >= TARGET;
  const names = { bare: 'bare', 'bare-bullmq': 'bare BullMQ (reference)', offload: 'offload' };
  const table = [
    '| variant | mails/s | rounds | CPU ms/mail (the sending process) | worker event-loop lag p99 / max ms |',
    '| --- | ---: | --- | ---: | ---: |',
    ...(['bare', 'bare-bullmq', 'offload'] as const).map(
      (variant) =>
        `| ${names[variant]} | ${fixed(rate(variant), 0)} | ${of(variant)
          .map((r) => fixed(r.mails / r.seconds, 0))
          .join(', ')} | ${fixed(median(of(variant).map((r) => r.cpuMs)), 2)} | ` +
        (variant === 'bare' ? '—' : lag(variant)) +
        ' |',
    ),
    '',
    '| ratio (median of per-round ratios) | value | target | verdict |',
    '| --- | ---: | --- | --- |',
    `| offload / bare mails/s | ${fixed(ratio)}× | ≥ ${TARGET}×, 0 stalled | ${ok ? 'PASS' : 'FAIL'} |`,
    `| bare BullMQ / bare | ${fixed(ratioOf('bare-bullmq', 'bare'))}× | (what moving each mail through Redis costs any BullMQ worker) | — |`,
    `| offload / bare BullMQ | ${fixed(ratioOf('offload', 'bare-bullmq'))}× | (what our runtime adds to that: validation, logs, limits, the job's own code) | — |`,
    '',
    valid
      ? `Valid run: the SMTP server received every mail of every variant (${expectedMails}), no failed attempt, 0 stalled jobs, both workers stopped cleanly on SIGTERM.`
      : `INVALID RUN: mails received ${receivedMails} of ${expectedMails}, failed attempts ${failedAttempts}, stalled ${stalled}, worker exits ${String(exit)} and ${String(bareExit)}.`,
    '',
    'The other work jobs have their own suites: make-thumbnail in **thumbnails**, render-cards + zip-report in **reports** (sections above).',
  ];
  const full = [
    '## email: send-email through a worker vs a bare nodemailer loop',
    '',
    ...header(
      started,
      `bullmq ${version('bullmq')}, nodemailer ${version('nodemailer')}, pino ${version('pino')}`,
    ),
    `- A minimal SMTP server in its own process (bench/smtp-sink.ts) accepts every message at once, for both variants: smtp-server holds each connection 100 ms before its greeting, and with a connection per message both variants would only measure that timer.`,
    `- \`bare\`: this process, \`nodemailer.createTransport(SMTP_URL)\` (as src/mail/mailer.ts: no pool, a connection per message) sending the welcome message, rendered per mail as the job renders it (bench/bare-mail.ts), ${concurrency} in flight.`,
    `- \`offload\`: a real worker process (\`${command('workers/main.ts')}\`, WORKER_QUEUES=mail, WORKER_CONCURRENCY=${concurrency}, LOG_LEVEL=info, logs piped to the bench; bench/worker-probe.ts preloaded for CPU and event-loop lag) runs one send-email job per mail, enqueued with \`offloader.enqueue(sendEmail, {template: welcome, …})\`; timed from the first enqueue to the last \`completed\` event (QueueEvents).`,
    `- \`bare BullMQ\` (reference, no target): a bare BullMQ Worker in its own process (bench/bare-mail-worker.ts, the same concurrency, worker-probe preloaded) whose processor renders and sends the same message as the bare loop, fed by bare \`queue.add\`s with the app's job options; timed as offload.`,
    `- ${mails} mails per variant per round (200 in a warm-up pass each), ${rounds} interleaved rounds (bare, bare BullMQ, offload; reversed in even rounds).`,
    '',
    '### Summary (medians over rounds)',
    '',
    ...table,
    '',
  ].join('\n');
  console.log(`\n${table.join('\n')}`);
  if (rounds >= MIN_ROUNDS_TO_WRITE) writeSection('email', full);
  else console.log(`\n(under ${MIN_ROUNDS_TO_WRITE} rounds: RESULTS.md left as it was)`);
  return ok;
}
