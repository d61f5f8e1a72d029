// The offloader that puts jobs on BullMQ queues in Redis, for worker processes to run. Each
// concern is its own unit: queue-backend.ts (the queues and the fail-fast Redis calls),
// queue-submit.ts (adding jobs), queue-status.ts (reading one), queue-progress.ts (a
// workflow's progress), queue-watch.ts (watching) and queue-cancel.ts (cancelling).
import type { Cluster, Redis } from 'ioredis';
import { RETENTION, type Retention } from './job-options.js';
import type { Logger } from './logger.js';
import { asWorkflow } from './offloader.js';
import { createQueueBackend } from './queue-backend.js';
import { cancelJob } from './queue-cancel.js';
import { readStatus } from './queue-status.js';
import { createSubmitter, submit, submitMany } from './queue-submit.js';
import { createWatchers } from './queue-watch.js';
import type { Registry } from './registry.js';
import type { JobTracing } from './tracing.js';
import type { Offloader } from './types.js';
import { compile } from './workflow.js';

export interface QueueOffloaderOptions {
  registry: Registry;
  /** A fail-fast producer connection: no offline queue, a short command timeout. */
  connection: Redis | Cluster;
  /** Makes the connections job events need (blocking reads); called lazily, once per queue. */
  eventsConnection: () => Redis | Cluster;
  prefix: string;
  log: Logger;
  mode?: 'queue' | 'embedded';
  /** RESULT_TTL / FAILED_TTL; RETENTION unless given. Keys are bound for RESULT_TTL. */
  retention?: Retention;
  /** Traces: each enqueue is a span, and the job carries its context (see tracing.ts). */
  tracing?: JobTracing | undefined;
  /** How long an unanswered enqueue waits to be settled before its 503 (see settle.ts). */
  settleWaitMs?: number;
}

/** The offloader that puts jobs on BullMQ queues in Redis, for worker processes to run. */
export function createQueueOffloader(options: QueueOffloaderOptions): Offloader {
  const { registry, connection, prefix, log, retention: kept = RETENTION, tracing } = options;
  const backend = createQueueBackend({ registry, connection, prefix, log, kept, tracing });
  const submitter = createSubmitter(backend, options.settleWaitMs);
  const watchers = createWatchers(backend, options.eventsConnection);

  return {
    mode: options.mode ?? 'queue',

    enqueue: (job, input, enqueueOptions = {}) =>
      submit(submitter, compile(asWorkflow(job, input, enqueueOptions.children)), enqueueOptions),

    enqueueMany: (job, inputs, manyOptions = {}) => submitMany(submitter, job, inputs, manyOptions),

    start: (workflow, startOptions = {}) => submit(submitter, compile(workflow), startOptions),

    status: (id) => readStatus(backend, id),

    cancel: (id) => cancelJob(backend, watchers.notify, id),

    watch: (id, listener) => watchers.watch(id, listener),

    async ping() {
      await backend.whenConnected(() => connection.ping());
    },

    async close() {
      const flows = backend.flowsMade();
      await Promise.all([
        watchers.close(),
        ...[...backend.queues.values(), ...(flows ? [flows] : [])].map((q) => q.close()),
      ]);
    },
  };
}
