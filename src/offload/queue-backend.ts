// What the queue offloader's parts share: the BullMQ queues (one per queue name), the flow
// producer for workflows, and the fail-fast way every part talks to Redis.
import { FlowProducer, Job, Queue } from 'bullmq';
import type { Cluster, Redis } from 'ioredis';
import { isConnectionError } from './connection-error.js';
import { parseInput } from './define.js';
import { QueueUnavailableError } from './errors.js';
import type { Retention } from './job-options.js';
import type { Logger } from './logger.js';
import type { Registry } from './registry.js';
import type { JobTracing } from './tracing.js';
import type { AnyJob, JobData } from './types.js';

export interface QueueBackend {
  registry: Registry;
  connection: Redis | Cluster;
  prefix: string;
  log: Logger;
  /** RESULT_TTL / FAILED_TTL. Keys are bound for RESULT_TTL. */
  kept: Retention;
  queues: ReadonlyMap<string, Queue<JobData>>;
  queueNamed: (name: string) => Queue<JobData>;
  /** The flow producer, made on the first workflow. */
  flows: () => FlowProducer;
  /** The flow producer if one was made (it is closed with the queues). */
  flowsMade: () => FlowProducer | undefined;
  /** A job's data from its input, checked against its schema; the job must be registered. */
  validated: (job: AnyJob, input: unknown, requestId: string | undefined) => JobData;
  /**
   * Runs a Redis operation, failing fast: when not connected, BullMQ would wait for a
   * connection that may never come. Any Redis failure reads as "the queue is unavailable".
   */
  whenConnected: <T>(operation: () => Promise<T>) => Promise<T>;
  /** The job with this id, whichever queue holds it. */
  find: (id: string) => Promise<Job<JobData> | undefined>;
}

export function createQueueBackend(options: {
  registry: Registry;
  connection: Redis | Cluster;
  prefix: string;
  log: Logger;
  kept: Retention;
  tracing?: JobTracing | undefined;
}): QueueBackend {
  const { registry, connection, prefix, log } = options;
  const telemetry = options.tracing && { telemetry: options.tracing.telemetry };
  const queues = new Map(
    registry.queues.map((name) => {
      const queue = new Queue<JobData>(name, { connection, prefix, ...telemetry });
      queue.on('error', (error) => {
        if (!isConnectionError(error)) log.warn({ err: error, queue: name }, 'queue error');
      });
      return [name, queue] as const;
    }),
  );
  const queueNamed = (name: string) => {
    const queue = queues.get(name);
    if (!queue) throw new Error(`no job in the registry uses queue ${name}`);
    return queue;
  };
  let flowProducer: FlowProducer | undefined;
  const flows = () => {
    if (!flowProducer) {
      flowProducer = new FlowProducer({ connection, prefix, ...telemetry });
      flowProducer.on('error', (error) => {
        if (!isConnectionError(error)) log.warn({ err: error }, 'flow producer error');
      });
    }
    return flowProducer;
  };

  function validated(job: AnyJob, input: unknown, requestId: string | undefined): JobData {
    const parsed = parseInput(job, input);
    if (registry.get(job.name) !== job) throw new Error(`job ${job.name} is not in the registry`);
    return { input: parsed, requestId };
  }

  async function whenConnected<T>(operation: () => Promise<T>): Promise<T> {
    if (connection.status !== 'ready') throw new QueueUnavailableError();
    try {
      return await operation();
    } catch (error) {
      throw new QueueUnavailableError(error);
    }
  }

  // An id does not name its queue: ask every queue at once (one round trip of waiting, not N).
  const find = (id: string) =>
    whenConnected(async () => {
      const found = await Promise.all([...queues.values()].map((queue) => queue.getJob(id)));
      return found.find((job) => job !== undefined) as Job<JobData> | undefined;
    });

  return {
    registry,
    connection,
    prefix,
    log,
    kept: options.kept,
    queues,
    queueNamed,
    flows,
    flowsMade: () => flowProducer,
    validated,
    whenConnected,
    find,
  };
}
