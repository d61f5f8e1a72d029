import type { Logger } from './logger.js';
import { parseInput } from './define.js';
import { runJob } from './execute.js';
import { IdempotencyConflictError } from './errors.js';
import { childId, jobIdFor } from './ids.js';
import { keyedIdSeed, recordKey, treeFingerprint, type KeyRecord } from './idempotency.js';
import { asWorkflow, refuseInBatches } from './offloader.js';
import { sumProgress } from './status.js';
import type { Accepted, AnyJob, EnqueueOptions, JobStatus, Offloader } from './types.js';
import { timing } from './timing.js';
import { compile, type FlowNode } from './workflow.js';

const described = ({ summary }: KeyRecord) => (summary ? { summary } : {});

/** How many finished jobs inline mode remembers for `status()`; the oldest are forgotten. */
const REMEMBERED = 1_000;

/** What an inline offloader's functions share. */
interface Inline {
  deps: unknown;
  log: Logger;
  /** Jobs that enqueue follow-ups run them inline too, inside their own run. */
  enqueue: Offloader['enqueue'];
  finished: Map<string, JobStatus>;
  running: Map<string, Promise<JobStatus>>;
  /** Binds a key to a record, or answers the record it is bound to (see `keyBinder`). */
  bind: (name: string, key: string, record: KeyRecord) => KeyRecord;
}

/**
 * Celery's `task_always_eager`: `enqueue` runs the job inside the call, once, with no Redis.
 * For tests and debugging; the HTTP contract (202 + status URL) is the same as in queue mode.
 */
export function createInlineOffloader(options: {
  deps: unknown;
  log: Logger;
  /** How long a key stays bound to its request (RESULT_TTL in ms; 24 h unless given). */
  keyTtlMs?: number;
}): Offloader {
  const inline: Inline = {
    deps: options.deps,
    log: options.log,
    enqueue: (job, input, enqueueOptions) => offloader.enqueue(job, input, enqueueOptions),
    finished: new Map(),
    running: new Map(),
    bind: keyBinder(options.keyTtlMs ?? 24 * 3600 * 1000),
  };
  const { finished } = inline;

  const offloader: Offloader = {
    mode: 'inline',
    enqueue: (job, input, enqueueOptions = {}) =>
      submit(inline, compile(asWorkflow(job, input, enqueueOptions.children)), enqueueOptions),
    async enqueueMany(job, inputs, manyOptions = {}) {
      refuseInBatches(manyOptions);
      for (const input of inputs) parseInput(job, input); // every one, before any runs
      const accepted: Accepted[] = [];
      for (const input of inputs) accepted.push(await offloader.enqueue(job, input, manyOptions));
      return accepted;
    },
    start: (workflow, startOptions = {}) => submit(inline, compile(workflow), startOptions),

    status: (id) => Promise.resolve(finished.get(id) ?? null),
    // Every inline job is final before its id is known: there is never anything to cancel.
    cancel(id) {
      const status = finished.get(id);
      return Promise.resolve(status ? { status, changed: false } : null);
    },
    // Inline jobs are final before anyone can watch them: nothing will ever change.
    watch: () => Promise.resolve(() => undefined),
    ping: () => Promise.resolve(),
    close: () => Promise.resolve(),
  };
  return offloader;
}

function remember({ finished }: Inline, status: JobStatus) {
  finished.set(status.id, status);
  if (finished.size > REMEMBERED) finished.delete(finished.keys().next().value as string);
}

function failed(job: AnyJob, id: string, error: string): JobStatus {
  const now = new Date().toISOString();
  return {
    id,
    name: job.name,
    state: 'failed',
    progress: 0,
    error,
    attempts: 0,
    createdAt: now,
    finishedAt: now,
  };
}

async function run(
  inline: Inline,
  job: AnyJob,
  input: unknown,
  id: string,
  requestId?: string,
  results: unknown[] = [],
): Promise<JobStatus> {
  const status: JobStatus = {
    id,
    name: job.name,
    state: 'active',
    progress: 0,
    attempts: 1,
    createdAt: new Date().toISOString(),
    startedAt: new Date().toISOString(),
  };
  const log = inline.log.child({ jobId: id, job: job.name, reqId: requestId });
  try {
    status.result = await runJob(job, input, {
      jobId: id,
      attempt: 1,
      log,
      deps: inline.deps,
      enqueue: inline.enqueue,
      results: () => Promise.resolve(results),
      progress: (value) => {
        status.progress = value;
        return Promise.resolve();
      },
    });
    status.state = 'completed';
  } catch (error) {
    status.state = 'failed';
    status.error = error instanceof Error ? error.message : String(error);
    log.warn({ err: error }, 'job failed');
  }
  status.finishedAt = new Date().toISOString();
  return status;
}

/**
 * A workflow's tree, depth first: a job's children run first, one by one, then the job with
 * their results. A child that fails for good fails its parent unless the policy says continue.
 */
async function runTree(
  inline: Inline,
  node: FlowNode,
  id: string,
  { requestId, progressTotal }: EnqueueOptions,
): Promise<JobStatus> {
  const childStatuses: JobStatus[] = [];
  for (const [index, kid] of node.children.entries()) {
    const done = await runTree(inline, kid, childId(id, index), { requestId });
    childStatuses.push(done);
    if (done.state === 'failed' && node.onChildFailure === 'fail') {
      return failed(node.job, id, `${done.name} ${done.id} failed: ${done.error ?? ''}`);
    }
  }
  const results = childStatuses.filter((s) => s.state === 'completed').map((s) => s.result);
  const status = await run(inline, node.job, node.input, id, requestId, results);
  const sum = sumProgress(childStatuses.map((s) => s.progress));
  if (sum.total > 0) status.progress = { done: sum.done, total: progressTotal ?? sum.total };
  return status;
}

/** Keys and what they are bound to, as queue mode's records (forgotten after `keyTtlMs`). */
function keyBinder(keyTtlMs: number): Inline['bind'] {
  const keys = new Map<string, KeyRecord & { until: number }>();
  return function bind(name, key, record) {
    const now = Date.now();
    for (const [k, r] of keys) {
      if (r.until > now) break; // oldest first: the rest are younger
      keys.delete(k);
    }
    const where = recordKey('inline', name, key);
    const earlier = keys.get(where);
    if (earlier) return earlier;
    keys.set(where, { ...record, until: now + keyTtlMs });
    return record;
  };
}

async function submit(
  inline: Inline,
  root: FlowNode,
  enqueueOptions: EnqueueOptions,
): Promise<Accepted> {
  const { finished, running } = inline;
  timing(enqueueOptions); // refuses what queue mode refuses; then runs now, whatever the delay
  // Every input is checked before anything runs, as queue mode checks before adding.
  const check = (node: FlowNode): FlowNode => ({
    ...node,
    input: parseInput(node.job, node.input),
    children: node.children.map(check),
  });
  const tree = check(root);
  const { key, summary } = enqueueOptions;
  const name = root.job.name;
  let id = jobIdFor(name);
  let record: KeyRecord = { fingerprint: '', summary };
  if (key !== undefined) {
    const print = enqueueOptions.fingerprint ?? treeFingerprint(tree);
    record = inline.bind(name, key, { fingerprint: print, summary });
    if (record.fingerprint !== print) throw new IdempotencyConflictError(name);
    id = jobIdFor(name, keyedIdSeed(key, print, 0));
    // A keyed duplicate gets the first call's job, finished or still running.
    const earlier = finished.get(id) ?? (await running.get(id));
    if (earlier) {
      return { id, name, state: earlier.state, replayed: true, ...described(record) };
    }
  }
  const workflow = runTree(inline, tree, id, enqueueOptions);
  running.set(id, workflow);
  try {
    const status = await workflow;
    remember(inline, status);
    return { id, name, state: status.state, ...described(record) };
  } finally {
    running.delete(id);
  }
}
