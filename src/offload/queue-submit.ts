// How the queue offloader adds jobs: one job, a workflow's tree as one BullMQ flow, a keyed
// (idempotent) enqueue, or a batch; each settled before it is answered when Redis does not
// answer (settle.ts).
import { randomUUID } from 'node:crypto';
import { Job, type FlowJob, type JobsOptions } from 'bullmq';
import { IdempotencyConflictError, QueueUnavailableError } from './errors.js';
import { keyedIdSeed, recordKey, treeFingerprint, type KeyRecord } from './idempotency.js';
import { childId, jobIdFor } from './ids.js';
import { jobOptions, type RunOptions } from './job-options.js';
import { refuseInBatches } from './offloader.js';
import type { QueueBackend } from './queue-backend.js';
import { settle, surelyNotAdded } from './settle.js';
import { toState, toStatus } from './status.js';
import { timing } from './timing.js';
import type { Accepted, AnyJob, EnqueueOptions, JobData, ManyOptions } from './types.js';
import type { FlowNode } from './workflow.js';

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

/** What one enqueue gives every job it adds: its options and their timing, worked out once. */
interface Submission {
  options: EnqueueOptions;
  delayMs: number;
  expiresAt?: number;
}

/** What the submitting functions share: the backend, and what they work out once. */
export interface Submitter {
  backend: QueueBackend;
  /** A job's options are the same on every enqueue: made once (BullMQ copies, never mutates). */
  optionsOf: Map<AnyJob, RunOptions>;
  settling: { connection: QueueBackend['connection']; log: QueueBackend['log']; waitMs: number };
}

/** `settleWaitMs`: how long an unanswered enqueue waits to be settled before its 503. */
export function createSubmitter(backend: QueueBackend, settleWaitMs = SETTLE_WAIT_MS): Submitter {
  const { connection, log } = backend;
  return { backend, optionsOf: new Map(), settling: { connection, log, waitMs: settleWaitMs } };
}

/** A job's BullMQ options for one enqueue. */
function addOptions(
  { backend, optionsOf }: Submitter,
  job: AnyJob,
  jobId: string,
  delayMs: number,
  o: EnqueueOptions,
) {
  let base = optionsOf.get(job);
  if (!base) optionsOf.set(job, (base = jobOptions(job, backend.kept)));
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
function dataOf(s: Submitter, node: FlowNode, { options, expiresAt }: Submission): JobData {
  const data = s.backend.validated(node.job, node.input, options.requestId);
  if (node.children.length) data.children = node.children.length;
  if (expiresAt) data.expiresAt = expiresAt;
  return data;
}

/** A workflow's tree as one BullMQ flow, every input checked on the way. */
function toFlow(
  s: Submitter,
  node: FlowNode,
  nodeId: string,
  data: JobData,
  sub: Submission,
): FlowJob {
  return {
    name: node.job.name,
    queueName: node.queue,
    data,
    opts: addOptions(s, node.job, nodeId, sub.delayMs, sub.options),
    children: node.children.map((child, index) => {
      const flow = toFlow(s, child, childId(nodeId, index), dataOf(s, child, sub), sub);
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

/**
 * Adds a job, or a workflow's tree of jobs as one flow (atomically). When Redis does not
 * answer, the add is settled (see settle.ts) before anything is answered: a refused one
 * throws QueueUnavailableError (503) and never runs; one already started is accepted.
 */
async function add(s: Submitter, root: FlowNode, id: string, data: JobData, sub: Submission) {
  const { connection, prefix, flows, queueNamed } = s.backend;
  if (connection.status !== 'ready') throw new QueueUnavailableError(); // nothing written
  const tree = root.children.length ? toFlow(s, root, id, data, sub) : undefined;
  try {
    // Most enqueues are one job: a plain add, no tree to build.
    if (tree) await flows().add(tree);
    else
      await queueNamed(root.queue).add(
        root.job.name,
        data,
        addOptions(s, root.job, id, sub.delayMs, sub.options),
      );
    return 'added' as const;
  } catch (error) {
    // Redis refused it, or it was never written: nothing to settle.
    if (surelyNotAdded(error)) throw new QueueUnavailableError(error);
    const settled = await settle(s.settling, `${prefix}:${root.queue}:${id}`, data.claim);
    if (settled === 'absent' || settled === 'refused') throw new QueueUnavailableError(error);
    return settled;
  }
}

/**
 * Adds a job, or a workflow's tree of jobs as one flow. Every input is checked first, so a
 * bad one adds nothing. The timing options apply to every job of the tree.
 */
export async function submit(
  s: Submitter,
  root: FlowNode,
  options: EnqueueOptions,
): Promise<Accepted> {
  const { key, progressTotal, summary } = options;
  const sub: Submission = { options, ...timing(options) };
  const data = dataOf(s, root, sub);
  if (progressTotal) data.progressTotal = progressTotal;
  const name = root.job.name;
  if (key === undefined) {
    const id = jobIdFor(name);
    const added = await add(s, root, id, data, sub);
    const state = added === 'started' ? 'active' : sub.delayMs ? 'delayed' : 'waiting';
    return summary ? { id, name, state, summary } : { id, name, state };
  }
  return submitKeyed(s, root, key, data, sub);
}

/** A keyed enqueue: the key's fingerprint is checked (atomically), then the job is added. */
async function submitKeyed(
  s: Submitter,
  root: FlowNode,
  key: string,
  data: JobData,
  sub: Submission,
) {
  const { connection, prefix, kept, queueNamed, whenConnected } = s.backend;
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
    const added = await add(s, root, id, data, sub);
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

/** See Offloader.enqueueMany: one addBulk, all of the batch or none of it. */
export async function submitMany(
  s: Submitter,
  job: AnyJob,
  inputs: readonly unknown[],
  manyOptions: ManyOptions,
): Promise<Accepted[]> {
  const { connection, prefix, queueNamed, validated } = s.backend;
  refuseInBatches(manyOptions);
  const { delayMs, expiresAt } = timing(manyOptions);
  const batch = inputs.map((input) => {
    const id = jobIdFor(job.name);
    const data = validated(job, input, manyOptions.requestId);
    if (expiresAt) data.expiresAt = expiresAt;
    return { id, name: job.name, data, opts: addOptions(s, job, id, delayMs, manyOptions) };
  });
  if (batch.length > 0) {
    if (connection.status !== 'ready') throw new QueueUnavailableError();
    try {
      await queueNamed(job.queue).addBulk(batch);
    } catch (error) {
      if (surelyNotAdded(error)) throw new QueueUnavailableError(error);
      // One MULTI: all of the batch landed or none did. Settle each (see add()).
      const settled = await Promise.all(
        batch.map(({ id }) => settle(s.settling, `${prefix}:${job.queue}:${id}`)),
      );
      if (settled.every((r) => r === 'absent' || r === 'refused')) {
        throw new QueueUnavailableError(error);
      }
    }
  }
  const state = delayMs ? 'delayed' : 'waiting';
  return batch.map(({ id }) => ({ id, name: job.name, state }));
}
