// The servers under test, in their own process so the load generator does not share their event
// loop. Started by bench/run.ts with an IPC channel: env BENCH_REDIS_URL and BENCH_DIR in, one
// `{ports}` message out, its CPU usage on each 'cpu' message; it exits when the parent disconnects. Its stdout is /dev/null, so the
// app's own logger (src/logger.ts, JSON to stdout) pays the real logging cost without a terminal.
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import type { Server } from 'node:http';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import express, { type Express } from 'express';
import { Redis } from 'ioredis';
import { sendEmail } from '../jobs/index.js';
import { createApp } from '../src/app.js';
import { connectOffloader, quit, registry } from '../src/process/boot.js';
import { createMonitor } from '../src/process/monitor.js';
import { loadConfig } from '../src/config.js';
import { closeDeps, createDeps } from '../src/deps.js';
import { createLogger } from '../src/logger.js';
import {
  createQueueOffloader,
  jobOptions,
  type JobData,
  type Offloader,
} from '../src/offload/index.js';

// Types only: bench/run.ts imports them with `import type`, which never runs this file.
export type Variant = 'bare-json' | 'bare-add' | 'bare-enqueue' | 'offload';
/** The one message this process sends: where each variant listens (POST /signup on each). */
export interface ServersReady {
  ports: Record<Variant, number>;
}

interface SignupBody {
  email: string;
  name: string;
}

/** express.json() and a 202: the floor of any JSON POST in Express 5. */
function bareJson(): Express {
  const app = express();
  app.use(express.json());
  app.post('/signup', (_req, res) => {
    res.status(202).json({ id: randomUUID() });
  });
  return app;
}

/** The same, plus the one Redis round trip that offloading cannot avoid: a bare BullMQ add. */
function bareAdd(queue: Queue<JobData>): Express {
  const app = express();
  app.use(express.json());
  app.post('/signup', async (req, res) => {
    const { email, name } = req.body as SignupBody;
    const id = randomUUID();
    await queue.add(
      sendEmail.name,
      { input: { template: 'welcome', to: email, name } },
      { ...jobOptions(sendEmail), jobId: id },
    );
    res.status(202).json({ id });
  });
  return app;
}

/**
 * bare-add's route with our offloader's enqueue in place of `queue.add` (the job's input
 * validated, the job options, the fail-fast connection): what the offloader alone adds.
 */
function bareEnqueue(offloader: Offloader): Express {
  const app = express();
  app.use(express.json());
  app.post('/signup', async (req, res) => {
    const { email, name } = req.body as SignupBody;
    const { id } = await offloader.enqueue(sendEmail, { template: 'welcome', to: email, name });
    res.status(202).json({ id });
  });
  return app;
}

async function listen(app: Express): Promise<Server> {
  const server = app.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return server;
}

function portOf(server: Server): number {
  const address = server.address();
  if (typeof address !== 'object' || !address) throw new Error('server has no port');
  return address.port;
}

const redisUrl = process.env.BENCH_REDIS_URL;
const dir = process.env.BENCH_DIR;
if (!redisUrl || !dir || !process.send) {
  throw new Error('run by bench/run.ts: needs BENCH_REDIS_URL, BENCH_DIR and an IPC channel');
}

// bare-add: a plain ioredis connection and a Queue under its own prefix.
const bareConnection = new Redis(redisUrl, { maxRetriesPerRequest: null });
const bareQueue = new Queue<JobData>(sendEmail.queue, {
  connection: bareConnection,
  prefix: 'bare',
});

// offload: the real app, wired as src/web.ts wires it.
const config = loadConfig({
  REDIS_URL: redisUrl,
  QUEUE_PREFIX: 'bench',
  OFFLOAD_MODE: 'queue',
  OUTBOX_DIR: join(dir, 'outbox'),
  STORAGE_DIR: join(dir, 'storage'), // ignored by a config without storage
  LOG_LEVEL: 'info',
  // The guards on (src/http/security.ts): every request is counted in Redis, against a limit this
  // one-IP load never reaches, so every answer is still a 202.
  RATE_LIMIT_SIGNUP: '1000000000/min',
});
const log = createLogger(config.LOG_LEVEL, 'web');
const deps = createDeps(config);
const { offloader, connection } = connectOffloader(config, log, deps);
const monitor = createMonitor({ config, connection, queueNames: registry.queues, log });
if (!connection) throw new Error('the http bench runs the app in queue mode');
// bare-enqueue: an offloader of its own on the same producer connection, under its own prefix.
const enqueuer = createQueueOffloader({
  registry,
  connection,
  eventsConnection: () => {
    throw new Error('the bench watches no job');
  },
  prefix: 'enq',
  log,
});

// The producer connection fails fast instead of queueing commands: wait until it is up.
if (connection.status !== 'ready') await once(connection, 'ready');
await Promise.all([bareQueue.waitUntilReady(), offloader.ping()]);

const servers: Record<Variant, Server> = {
  'bare-json': await listen(bareJson()),
  'bare-add': await listen(bareAdd(bareQueue)),
  'bare-enqueue': await listen(bareEnqueue(enqueuer)),
  offload: await listen(createApp({ offloader, deps, log, monitor, redis: connection })),
};
const ready: ServersReady = {
  ports: {
    'bare-json': portOf(servers['bare-json']),
    'bare-add': portOf(servers['bare-add']),
    'bare-enqueue': portOf(servers['bare-enqueue']),
    offload: portOf(servers.offload),
  },
};
process.send(ready);
// 'cpu' → this process' CPU time so far (µs), so the parent can charge each round its share.
process.on('message', (message) => {
  if (message === 'cpu') process.send?.(process.cpuUsage());
});

let closing = false;
async function close(): Promise<void> {
  if (closing) return;
  closing = true;
  for (const server of Object.values(servers)) server.closeAllConnections();
  await Promise.all(
    Object.values(servers).map((server) => new Promise((resolve) => server.close(resolve))),
  );
  await Promise.all([bareQueue.close(), monitor.close(), offloader.close(), enqueuer.close()]);
  await Promise.all([quit(bareConnection), quit(connection)]);
  await closeDeps(deps);
}

// The parent went away (done, crashed or Ctrl-C): stop.
process.on('disconnect', () => {
  close().then(
    () => process.exit(0),
    (error: unknown) => {
      console.error('bench servers: close failed', error);
      process.exit(1);
    },
  );
});
process.on('SIGINT', () => undefined); // Ctrl-C reaches the whole group; the parent ends us.
