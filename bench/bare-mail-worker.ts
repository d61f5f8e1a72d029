// The email suite's `bare BullMQ` reference row: a bare BullMQ Worker on the mail queue whose
// processor sends the welcome mail exactly as the suite's bare loop does (nodemailer, a
// transport from SMTP_URL, no pool; bench/bare-mail.ts). It splits offload's gap to the bare
// loop into what any BullMQ worker pays to move a mail through Redis and what our runtime adds. Forked by bench/email.ts
// with bench/worker-probe preloaded; env BENCH_REDIS_URL, BENCH_PREFIX, BENCH_CONCURRENCY,
// SMTP_URL. It answers 'ready' once consuming and leaves on SIGTERM.
import { Worker } from 'bullmq';
import { Redis } from 'ioredis';
import nodemailer from 'nodemailer';
import { sendEmail } from '../jobs/index.js';
import { quit } from '../src/process/boot.js';
import { loadConfig } from '../src/config.js';
import { bareWelcome } from './bare-mail.js';

const { BENCH_REDIS_URL: url, BENCH_PREFIX: prefix, SMTP_URL: smtpUrl } = process.env;
const concurrency = Number(process.env.BENCH_CONCURRENCY);
if (!url || !prefix || !smtpUrl || !Number.isInteger(concurrency) || !process.send) {
  throw new Error('forked by bench/email.ts with BENCH_REDIS_URL, BENCH_PREFIX, SMTP_URL, …');
}

const config = loadConfig({ REDIS_URL: url, SMTP_URL: smtpUrl });
const transport = nodemailer.createTransport(smtpUrl);
const message = bareWelcome(config);
const connection = new Redis(url, { maxRetriesPerRequest: null });
const worker = new Worker<{ input: { name: string; to: string } }>(
  sendEmail.queue,
  async (job) => {
    const { to, name } = job.data.input;
    const info = await transport.sendMail(message(to, name));
    return { messageId: info.messageId };
  },
  { connection, prefix, concurrency },
);
worker.on('error', (error) => console.error('bare mail worker:', error));
await worker.waitUntilReady();
process.send({ type: 'ready' });

process.on('SIGTERM', () => {
  void (async () => {
    await worker.close();
    await quit(connection);
    transport.close();
    process.exit(0);
  })();
});
process.on('SIGINT', () => undefined); // Ctrl-C reaches the whole group; the parent ends us.
process.channel?.unref();
