// A queue offloader and worker runners on the shared private Redis, under a prefix of their
// own, for tests of the job runtime itself (test/offload/). Each runner stands for a worker
// process: its own connections, so a cross-process cancel must go through Redis to reach it.
import { randomUUID } from 'node:crypto';
import { Job, Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { createLogger } from '../../src/logger.js';
import {
  createQueueOffloader,
  createRegistry,
  FINAL_STATES,
  startRunner,
  type AnyJob,
  type JobStatus,
  type Offloader,
  type Retention,
  type Runner,
} from '../../src/offload/index.js';
import type { RunnerOptions } from '../../src/offload/runner.js';
import { createProducerConnection, createWorkerConnection } from '../../src/redis/connections.js';
import { eventually } from './app.js';
import { sharedRedisUrl } from './global.js';

export const silentLog = createLogger('silent', 'test');

export interface Runtime {
  offloader: Offloader;
  prefix: string;
  /** Starts one more worker "process" (a runner on its own connection). */
  startWorker(options?: Partial<RunnerOptions<unknown>>): Runner;
  /** Jobs of every state in a queue: to prove that nothing was added. */
  countJobs(queue: string): Promise<number>;
  /** The BullMQ job behind an id (attemptsMade, opts...). */
  bullJob(queue: string, id: string): Promise<Job | undefined>;
  /** Waits until the job's status passes `check` (default: a final state). */
  until(id: string, check?: (status: JobStatus) => boolean, timeoutMs?: number): Promise<JobStatus>;
  close(): Promise<void>;
}

export async function startRuntime(
  jobs: readonly AnyJob[],
  options: { retention?: Retention } = {},
): Promise<Runtime> {
  const url = sharedRedisUrl();
  const prefix = `rt${randomUUID().slice(0, 8)}`;
  const registry = createRegistry(jobs);
  const connection = createProducerConnection(url, silentLog);
  await new Promise((resolve) => connection.once('ready', resolve));
  const connections: Redis[] = [connection];
  const offloader = createQueueOffloader({
    registry,
    connection,
    eventsConnection: () => {
      const events = createWorkerConnection(url, silentLog);
      connections.push(events);
      return events;
    },
    prefix,
    log: silentLog,
    ...options,
  });
  const runners: Runner[] = [];
  const inspectors = new Map<string, Queue>();
  const inspector = (name: string) => {
    let queue = inspectors.get(name);
    if (!queue) inspectors.set(name, (queue = new Queue(name, { connection: { url }, prefix })));
    return queue;
  };
  return {
    offloader,
    prefix,
    startWorker(overrides = {}) {
      const workerConnection = createWorkerConnection(url, silentLog);
      connections.push(workerConnection);
      const runner = startRunner({
        registry,
        queues: '*',
        connection: workerConnection,
        prefix,
        concurrency: { default: 4 },
        lockMs: 5_000,
        stalledIntervalMs: 5_000,
        deps: {},
        log: silentLog,
        ...options,
        ...overrides,
      });
      runners.push(runner);
      return runner;
    },
    countJobs: async (queue) =>
      Object.values(await inspector(queue).getJobCounts()).reduce((a, b) => a + b, 0),
    bullJob: (queue, id) => Job.fromId(inspector(queue), id),
    until: (id, check = (status) => FINAL_STATES.has(status.state), timeoutMs = 10_000) =>
      eventually(
        async () => {
          const status = await offloader.status(id);
          return status && check(status) ? status : undefined;
        },
        timeoutMs,
        `job ${id} in the expected state`,
      ),
    async close() {
      await Promise.all(runners.map((runner) => runner.close(Date.now() + 1_000)));
      await Promise.all([...inspectors.values()].map((queue) => queue.close()));
      await offloader.close();
      await Promise.all(connections.map((c) => c.quit().catch(() => c.disconnect())));
    },
  };
}
