import { randomUUID } from 'node:crypto';
import { FlowProducer, Job, Queue, QueueEvents, type FlowJob, type JobsOptions } from 'bullmq';
import type { Cluster, Redis } from 'ioredis';
import type { Logger } from './logger.js';
import { isConnectionError } from './connection-error.js';
import { parseInput } from './define.js';
import { CANCELLED, IdempotencyConflictError, QueueUnavailableError } from './errors.js';
import { keyedIdSeed, recordKey, treeFingerprint, type KeyRecord } from './idempotency.js';
import { settle, surelyNotAdded } from './settle.js';
import { cancelChannel } from './cancel.js';
import { childId, jobIdFor, parentIdOf } from './ids.js';
import { asWorkflow, refuseInBatches } from './offloader.js';
import type {
  Accepted,
  AnyJob,
  EnqueueOptions,
  JobData,
  JobEventListener,
  Offloader,
} from './types.js';
import type { Registry } from './registry.js';
import { FINAL_STATES, sumProgress, toState, toStatus, type Progress } from './status.js';
import { timing } from './timing.js';
import type { JobTracing } from './tracing.js';
import { compile, type FlowNode } from './workflow.js';

/** How long finished jobs stay readable: seconds (and at most so many per queue). */
export interface Retention {
  completed: { age: number; count: number };
  failed: { age: number; count: number };
}

/** RESULT_TTL and FAILED_TTL's defaults. */
export const RETENTION: Retention = retention(24 * 3600, 7 * 24 * 3600);

/** Completed jobs kept `resultTtl` s (at most 10,000 a queue); failed ones `failedTtl` s. */
export function retention(resultTtl: number, failedTtl: number): Retention {
  return {
    completed: { age: resultTtl, count: 10_000 },
    failed: { age: failedTtl, count: 50_000 },
  };
}

/** Backoff type of every job: the runner computes it from the job's RetryPolicy (a cap). */
export const BACKOFF_TYPE = 'offload';

const QUEUE_EVENTS = [
  'active',
  'progress',
  'completed',
  'failed',
  'delayed',
  'waiting',
  'removed',
] as const;

export interface QueueOffloaderOptions {
  registry: Registry;
  /** A fail-fast producer connection (see src/redis.ts). */
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

/** settleWaitMs's default: with the producer's 1 s command timeout, a 503 within about 4 s. */
export const SETTLE_WAIT_MS = 3_000;

/** Binds KEYS[1] to ARGV[1] for ARGV[2] ms unless it is bound: answers the earlier binding. */
const BIND_KEY = `
local earlier = redis.call('GET', KEYS[1])
if earlier then return earlier end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return false
`;

/** A key's job ids past this many refused enqueues (each a 503) are not tried: 503 again. */
const MAX_GENERATIONS = 10;

/**
 * What every run of a job shares. Required, so that a field added here must be added to the
 * field-by-field copy in `addOptions` too, or the build fails.
 */
type RunOptions = Required<
  Pick<JobsOptions, 'attempts' | 'backoff' | 'removeOnComplete' | 'removeOnFail'>
>;

/** BullMQ options for a job's runs, from its definition (the id is added per enqueue). */
export function jobOptions(job: AnyJob, kept: Retention = RETENTION): RunOptions {
  return {
    attempts: job.retry.attempts,
    // The delay itself comes from the runner's backoff strategy (capped, jittered): see define.ts.
    backoff: { type: BACKOFF_TYPE, delay: job.retry.delayMs },
    removeOnComplete: kept.completed,
    removeOnFail: kept.failed,
  };
}

/** What one enqueue gives every job it adds: its options and their timing, worked out once. */
interface Submission {
  options: EnqueueOptions;
  delayMs: number;
  expiresAt?: number;
}

/** The offloader that puts jobs on BullMQ queues in Redis, for worker processes to run. */
export function createQueueOffloader(options: QueueOffloaderOptions): Offloader {
  const { registry, connection, prefix, log, retention: kept = RETENTION } = options;
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

  /**
   * Runs a Redis operation, failing fast: when not connected, BullMQ would wait for a
   * connection that may never come. Any Redis failure reads as "the queue is unavailable".
   */
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

  async function status(id: string) {
    const found = await find(id);
    if (!found) return null;
    const [state, family] = await Promise.all([
      whenConnected(() => found.getState()),
      whenConnected(() => childrenProgress(found)),
    ]);
    // It finished between the two reads: read it again, for its result or error.
    const job =
      FINAL_STATES.has(toState(state)) && !found.finishedOn ? ((await find(id)) ?? found) : found;
    const current = toStatus(job, state);
    if (family) {
      current.progress = { done: family.done, total: job.data.progressTotal ?? family.total };
      // Its children are at work: to a caller, the workflow is active (unless it was cancelled
      // or expired: toStatus's outcome stands).
      const unmarked = current.state === 'waiting';
      if (state === 'waiting-children' && unmarked && family.done > 0) current.state = 'active';
    }
    if (current.state === 'failed') {
      const childFailure = await whenConnected(() => failedChildOf(job));
      if (childFailure) {
        // A worker took the parent only to fail it: its own code never ran (as inline).
        current.error = childFailure;
        current.attempts = 0;
        delete current.startedAt;
      }
    }
    return current;
  }

  /** A workflow parent's progress: its children's `{done, total}`, added up. */
  async function childrenProgress(job: Job<JobData>): Promise<Progress | undefined> {
    if (!job.data.children) return undefined; // not a workflow: no dependencies to read
    const { processed = {}, unprocessed = [], failed = [] } = await job.getDependencies();
    const keys = [...Object.keys(processed), ...unprocessed, ...failed];
    if (keys.length === 0) return undefined;
    const pipeline = connection.pipeline();
    for (const key of keys) pipeline.hget(key, 'progress');
    const sum = sumProgress(((await pipeline.exec()) ?? []).map(([, value]) => value));
    return sum.total > 0 || job.data.progressTotal ? sum : undefined;
  }

  /** BullMQ says "child <key> failed" when a workflow's child failed: say what and why. */
  async function failedChildOf(job: Job): Promise<string | undefined> {
    const childKey = /^child (.+) failed$/.exec(job.failedReason)?.[1];
    const [, queueName, childJobId] =
      childKey?.slice(prefix.length + 1).match(/^(.+):([^:]+)$/) ?? [];
    const queue = queueName && queues.get(queueName);
    const failedChild = queue && childJobId ? await Job.fromId(queue, childJobId) : undefined;
    if (!failedChild) return undefined;
    return `${failedChild.name} ${String(failedChild.id)} failed: ${failedChild.failedReason}`;
  }

  // Job events arrive on one Redis stream per queue; one reader per queue serves every watcher.
  const watchers = new Map<string, Set<JobEventListener>>();
  const readers = new Map<string, QueueEvents>();
  const readerConnections: (Redis | Cluster)[] = [];
  function notify(jobId: string) {
    const listeners = watchers.get(jobId);
    if (!listeners) return;
    status(jobId).then(
      (current) => {
        if (current) for (const listener of listeners) listener(current);
      },
      (error: unknown) => {
        log.warn({ err: error, jobId }, 'could not read job status');
      },
    );
  }
  function reader(queueName: string) {
    let events = readers.get(queueName);
    if (!events) {
      const readerConnection = options.eventsConnection();
      readerConnections.push(readerConnection);
      events = new QueueEvents(queueName, { connection: readerConnection, prefix });
      events.on('error', (error) => {
        if (!isConnectionError(error))
          log.warn({ err: error, queue: queueName }, 'queue events error');
      });
      for (const name of QUEUE_EVENTS) {
        events.on(name, ({ jobId }: { jobId: string }) => {
          notify(jobId);
          // News of a workflow's child is news of its parent (its progress adds up from them).
          const parentId = parentIdOf(jobId);
          if (parentId) notify(parentId);
        });
      }
      readers.set(queueName, events);
    }
    return events;
  }

  // A job's options are the same on every enqueue: made once (BullMQ copies, never mutates them).
  const optionsOf = new Map<AnyJob, RunOptions>();
  /** A job's BullMQ options for one enqueue. */
  function addOptions(job: AnyJob, jobId: string, delayMs: number, o: EnqueueOptions) {
    let base = optionsOf.get(job);
    if (!base) optionsOf.set(job, (base = jobOptions(job, kept)));
    // Field by field: V8 builds this literal about 20× faster than `{ ...base, jobId }`.
    const { attempts, backoff, removeOnComplete, removeOnFail } = base;
    const opts: JobsOptions & RunOptions = {
      attempts,
      backoff,
      removeOnComplete,
      removeOnFail,
      jobId,
    };
    if (delayMs) opts.delay = delayMs;
    if (o.priority) opts.priority = o.priority;
    if (o.lifo) opts.lifo = o.lifo;
    return opts;
  }

  /** A job's data: its input, checked against its schema, and what the runner reads. */
  function dataOf(node: FlowNode, { options, expiresAt }: Submission): JobData {
    const data = validated(node.job, node.input, options.requestId);
    if (node.children.length) data.children = node.children.length;
    if (expiresAt) data.expiresAt = expiresAt;
    return data;
  }

  /** A workflow's tree as one BullMQ flow, every input checked on the way. */
  function toFlow(node: FlowNode, nodeId: string, data: JobData, sub: Submission): FlowJob {
    return {
      name: node.job.name,
      queueName: node.queue,
      data,
      opts: addOptions(node.job, nodeId, sub.delayMs, sub.options),
      children: node.children.map((child, index) => {
        const flow = toFlow(child, childId(nodeId, index), dataOf(child, sub), sub);
        // `fail`: a child that fails for good fails this job, which then never runs.
        // `continue`: this job runs anyway, without that child's result.
        flow.opts = {
          ...flow.opts,
          ...(node.onChildFailure === 'fail'
            ? { failParentOnFailure: true }
            : { ignoreDependencyOnFailure: true }),
        };
        return flow;
      }),
    };
  }

  const settling = {
    connection,
    log,
    waitMs: options.settleWaitMs ?? SETTLE_WAIT_MS,
  };

  /**
   * Adds a job, or a workflow's tree of jobs as one flow (atomically). When Redis does not
   * answer, the add is settled (see settle.ts) before anything is answered: a refused one
   * throws QueueUnavailableError (503) and never runs; one already started is accepted.
   */
  async function add(root: FlowNode, id: string, data: JobData, sub: Submission) {
    if (connection.status !== 'ready') throw new QueueUnavailableError(); // nothing written
    const tree = root.children.length ? toFlow(root, id, data, sub) : undefined;
    try {
      // Most enqueues are one job: a plain add, no tree to build.
      if (tree) await flows().add(tree);
      else
        await queueNamed(root.queue).add(
          root.job.name,
          data,
          addOptions(root.job, id, sub.delayMs, sub.options),
        );
      return 'added' as const;
    } catch (error) {
      // Redis refused it, or it was never written: nothing to settle.
      if (surelyNotAdded(error)) throw new QueueUnavailableError(error);
      const settled = await settle(settling, `${prefix}:${root.queue}:${id}`, data.claim);
      if (settled === 'absent' || settled === 'refused') throw new QueueUnavailableError(error);
      return settled;
    }
  }

  /**
   * Adds a job, or a workflow's tree of jobs as one flow. Every input is checked first, so a
   * bad one adds nothing. The timing options apply to every job of the tree.
   */
  async function submit(root: FlowNode, options: EnqueueOptions): Promise<Accepted> {
    const { key, progressTotal, summary } = options;
    const sub: Submission = { options, ...timing(options) };
    const data = dataOf(root, sub);
    if (progressTotal) data.progressTotal = progressTotal;
    const name = root.job.name;
    if (key === undefined) {
      const id = jobIdFor(name);
      const added = await add(root, id, data, sub);
      const state = added === 'started' ? 'active' : sub.delayMs ? 'delayed' : 'waiting';
      return summary ? { id, name, state, summary } : { id, name, state };
    }
    return submitKeyed(root, key, data, sub);
  }

  /** A keyed enqueue: the key's fingerprint is checked (atomically), then the job is added. */
  async function submitKeyed(root: FlowNode, key: string, data: JobData, sub: Submission) {
    const { options } = sub;
    const name = root.job.name;
    const print = options.fingerprint ?? treeFingerprint(root);
    const mine: KeyRecord = { fingerprint: print, summary: options.summary };
    // One script binds the key, or answers what it is bound to: racing requests agree. (Not
    // `SET NX GET`: Redis before 7.0, which preflight accepts, refuses NX with GET.)
    const earlier = (await whenConnected(() =>
      connection.eval(
        BIND_KEY,
        1,
        recordKey(prefix, name, key),
        JSON.stringify(mine),
        kept.completed.age * 1000,
      ),
    )) as string | null;
    const record = earlier ? (JSON.parse(earlier) as KeyRecord) : mine;
    if (record.fingerprint !== print) throw new IdempotencyConflictError(name);
    const queue = queueNamed(root.queue);
    const claim = randomUUID();
    data.claim = claim;
    for (let generation = 0; generation < MAX_GENERATIONS; generation++) {
      const id = jobIdFor(name, keyedIdSeed(key, print, generation));
      const added = await add(root, id, data, sub);
      const accepted = { id, name, summary: record.summary };
      let stored: Job<JobData> | undefined;
      let bullState = added === 'started' ? 'active' : 'waiting';
      try {
        stored = await Job.fromId<JobData>(queue, id);
        if (stored) bullState = await stored.getState();
      } catch {
        // The job is in Redis (the add was answered): it stands, whoever made it.
        return { ...accepted, state: toState(bullState) };
      }
      // Gone already: it finished and its retention passed (a busy queue keeps 10,000).
      if (!stored) return { ...accepted, state: 'completed' as const };
      // An earlier enqueue with this key was refused (503): its job never runs, make anew.
      if (stored.data.refused) continue;
      const state = toStatus(stored, bullState).state;
      return stored.data.claim === claim
        ? { ...accepted, state }
        : { ...accepted, state, replayed: true as const };
    }
    throw new QueueUnavailableError();
  }

  /** Marks a job and its unfinished steps cancelled, and stops whichever worker runs them. */
  async function markCancelled(job: Job<JobData>, state: string): Promise<void> {
    const now = Date.now();
    // The mark is what counts: status reads it at once, and a worker drops a marked job
    // at pickup without running it.
    await whenConnected(() =>
      job.updateData({ ...job.data, outcome: 'cancelled', outcomeAt: now, reason: CANCELLED }),
    );
    const id = String(job.id);
    // Whichever worker process holds it stops it (see cancel.ts).
    await whenConnected(() => connection.publish(cancelChannel(prefix), id));
    notify(id);
    // A delayed job is dropped now rather than at its ETA (it may have moved on: fine).
    if (state === 'delayed') await job.promote().catch(() => undefined);
    // A workflow's unfinished steps go with it.
    if (job.data.children) {
      const { unprocessed = [] } = await whenConnected(() => job.getDependencies());
      for (const key of unprocessed) {
        const step = await find(key.slice(key.lastIndexOf(':') + 1));
        if (!step) continue;
        const stepState = toStatus(step, await whenConnected(() => step.getState())).state;
        if (!FINAL_STATES.has(stepState)) await markCancelled(step, stepState);
      }
    }
  }

  return {
    mode: options.mode ?? 'queue',

    enqueue: (job, input, enqueueOptions = {}) =>
      submit(compile(asWorkflow(job, input, enqueueOptions.children)), enqueueOptions),

    async enqueueMany(job, inputs, manyOptions = {}) {
      refuseInBatches(manyOptions);
      const { delayMs, expiresAt } = timing(manyOptions);
      const batch = inputs.map((input) => {
        const id = jobIdFor(job.name);
        const data = validated(job, input, manyOptions.requestId);
        if (expiresAt) data.expiresAt = expiresAt;
        return { id, name: job.name, data, opts: addOptions(job, id, delayMs, manyOptions) };
      });
      if (batch.length > 0) {
        if (connection.status !== 'ready') throw new QueueUnavailableError();
        try {
          await queueNamed(job.queue).addBulk(batch);
        } catch (error) {
          if (surelyNotAdded(error)) throw new QueueUnavailableError(error);
          // One MULTI: all of the batch landed or none did. Settle each (see add()).
          const settled = await Promise.all(
            batch.map(({ id }) => settle(settling, `${prefix}:${job.queue}:${id}`)),
          );
          if (settled.every((s) => s === 'absent' || s === 'refused')) {
            throw new QueueUnavailableError(error);
          }
        }
      }
      const state = delayMs ? 'delayed' : 'waiting';
      return batch.map(({ id }) => ({ id, name: job.name, state }));
    },

    start: (workflow, startOptions = {}) => submit(compile(workflow), startOptions),

    status,

    async cancel(id) {
      const job = await find(id);
      if (!job) return null;
      const current = toStatus(job, await whenConnected(() => job.getState()));
      if (FINAL_STATES.has(current.state))
        return { status: (await status(id)) ?? current, changed: false };
      await markCancelled(job, current.state);
      return { status: (await status(id)) ?? current, changed: true };
    },
    async watch(id, listener) {
      const job = await find(id);
      if (!job) return () => undefined;
      // A workflow's children may run on other queues: listen there too.
      const { unprocessed = [] } = job.data.children
        ? await whenConnected(() => job.getDependencies())
        : {};
      const queueNames = new Set([job.queueName]);
      for (const key of unprocessed)
        queueNames.add(key.slice(prefix.length + 1, key.lastIndexOf(':')));
      await Promise.all([...queueNames].map((name) => reader(name).waitUntilReady()));
      let listeners = watchers.get(id);
      if (!listeners) watchers.set(id, (listeners = new Set()));
      listeners.add(listener);
      return () => {
        listeners.delete(listener);
        if (listeners.size === 0) watchers.delete(id);
      };
    },

    async ping() {
      await whenConnected(() => connection.ping());
    },

    async close() {
      await Promise.all(
        [...readers.values(), ...queues.values(), ...(flowProducer ? [flowProducer] : [])].map(
          (q) => q.close(),
        ),
      );
      // BullMQ leaves connections it was handed open; the caller owns `connection`.
      await Promise.all(readerConnections.map((c) => c.quit().catch(() => c.disconnect())));
    },
  };
}
