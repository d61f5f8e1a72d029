// Dead letters: jobs that failed for good (out of attempts, or a permanent error), kept with
// their error and per-attempt history until FAILED_TTL passes. Admins list them and replay one,
// optionally with corrected input; a replay runs the same id (same status URL) with a full set
// of attempts. Jobs BullMQ holds as failed because they were cancelled or dropped as expired
// are not dead letters (status.ts reads them as `cancelled` / `expired`).
import { Job, type Queue } from 'bullmq';
import { parseInput } from './define.js';
import type { Registry } from './registry.js';
import { toStatus } from './status.js';
import type { JobData, JobStatus } from './types.js';

/** Where dead letters are read: the registry's queues, as BullMQ handles, and its jobs. */
export interface DeadLetterSource {
  registry: Registry;
  /** One handle per queue (the caller's: this app's monitor makes them), on the queues' prefix. */
  queues: readonly Queue[];
}

export interface DeadLetter {
  id: string;
  name: string;
  queue: string;
  /** The last attempt's error. */
  error: string;
  attempts: number;
  failedAt: string;
  /** Each failed attempt's error (the first line of its stack), oldest first. */
  history: string[];
}

export interface DeadLetterPage {
  jobs: DeadLetter[];
  /** There are more past this page (ask again with `offset + limit`). */
  more: boolean;
}

export const MAX_PAGE = 100;

/** A replay that cannot be done: the job is not failed, or a workflow step must go first. */
export class ReplayRefusedError extends Error {
  override name = 'ReplayRefusedError';
}

export class UnknownQueueError extends Error {
  override name = 'UnknownQueueError';
  constructor(queue: string, known: readonly string[]) {
    super(`no queue named "${queue}" (known: ${known.join(', ')})`);
  }
}

/** How many failed jobs one read asks a queue for. */
const BATCH = 100;

/**
 * Dead letters across the queues (or `queue` alone), newest first, `limit` (≤ 100) from
 * `offset`. BullMQ keeps each queue's failed jobs ordered by when they failed: the queues are
 * merged on that, and cancelled or expired jobs are skipped as they are met.
 */
export async function listDeadLetters(
  { queues }: DeadLetterSource,
  options: { queue?: string; limit?: number; offset?: number } = {},
): Promise<DeadLetterPage> {
  const limit = Math.max(1, Math.min(MAX_PAGE, Math.floor(options.limit ?? 20)));
  const offset = Math.max(0, Math.floor(options.offset ?? 0));
  const chosen =
    options.queue === undefined ? queues : queues.filter((q) => q.name === options.queue);
  if (options.queue !== undefined && chosen.length === 0) {
    throw new UnknownQueueError(
      options.queue,
      queues.map((q) => q.name),
    );
  }
  const readers = chosen.map((queue) => ({
    queue,
    read: 0,
    buffer: [] as Job<JobData>[],
    done: false,
  }));
  const head = async (reader: (typeof readers)[number]) => {
    if (reader.buffer.length === 0 && !reader.done) {
      const jobs = (await reader.queue.getFailed(
        reader.read,
        reader.read + BATCH - 1,
      )) as Job<JobData>[];
      reader.read += BATCH;
      reader.done = jobs.length < BATCH;
      // Removed between BullMQ's two reads (retention): gone, not a dead letter.
      reader.buffer.push(...jobs.filter(Boolean));
    }
    return reader.buffer[0];
  };
  const wanted = offset + limit + 1; // one more than the page: is there a next one?
  const found: DeadLetter[] = [];
  while (found.length < wanted) {
    const heads = await Promise.all(readers.map(head));
    let newest = -1;
    for (const [index, job] of heads.entries()) {
      const best = newest === -1 ? undefined : heads[newest];
      if (job && (!best || (job.finishedOn ?? 0) > (best.finishedOn ?? 0))) newest = index;
    }
    const reader = readers[newest];
    const job = reader?.buffer.shift();
    if (!reader || !job) break;
    const status = toStatus(job, 'failed');
    if (status.state !== 'failed') continue; // cancelled or expired
    found.push({
      id: status.id,
      name: job.name,
      queue: reader.queue.name,
      error: job.failedReason,
      attempts: status.attempts,
      failedAt: status.finishedAt ?? new Date(job.finishedOn ?? job.timestamp).toISOString(),
      history: (job.stacktrace ?? []).map((stack) => stack.split('\n', 1)[0] ?? ''),
    });
  }
  return { jobs: found.slice(offset, offset + limit), more: found.length > offset + limit };
}

/**
 * Runs a failed job again under its own id, with its attempts reset, optionally with
 * corrected `input` (validated against the job's schema: an InvalidJobInputError names the
 * problems; without it, the stored input is validated again, since the schema may have changed).
 * Answers the job's status after, or null for an unknown id; a ReplayRefusedError says why a
 * job cannot be replayed.
 *
 * A workflow's parent that failed because a step failed cannot simply run again: BullMQ would
 * run it at once, without that step's result, and cannot put it back to wait for its steps.
 * Replay the failed step first (it rejoins the parent's steps); once it has completed, replay
 * the parent: it then runs with every step's result.
 */
export async function replayDeadLetter(
  { registry, queues }: DeadLetterSource,
  id: string,
  input?: unknown,
): Promise<JobStatus | null> {
  const job = await findJob(queues, id);
  if (!job) return null;
  const current = toStatus(job, await job.getState());
  if (current.state !== 'failed') {
    throw new ReplayRefusedError(`job ${id} is ${current.state}: only failed jobs can be replayed`);
  }
  const definition = registry.get(job.name);
  if (!definition) {
    throw new ReplayRefusedError(`job ${id} is a "${job.name}", which this app does not define`);
  }
  await refuseUnfinishedWorkflow(job);
  // Its outcome and expiry were about its first life: the replay must not be dropped for them.
  const data: JobData = { ...job.data, input: parseInput(definition, input ?? job.data.input) };
  delete data.outcome;
  delete data.outcomeAt;
  delete data.expiresAt;
  await job.updateData(data);
  try {
    await job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
  } catch (error) {
    // Someone else replayed it (or it was removed) between our read and the retry.
    const state = await job.getState();
    if (state === 'failed') throw error;
    throw new ReplayRefusedError(`job ${id} is ${state}: it changed while being replayed`, {
      cause: error,
    });
  }
  const after = await findJob(queues, id);
  return after ? toStatus(after, await after.getState()) : null;
}

/** Refuses a workflow parent whose steps have not all completed: it would run without them. */
async function refuseUnfinishedWorkflow(job: Job<JobData>): Promise<void> {
  const failedStep = /^child (.+) failed$/.exec(job.failedReason)?.[1];
  if (!job.data.children && failedStep === undefined) return;
  const { failed = [], unprocessed = [] } = await job.getDependencies();
  const stepId = (key: string) => key.slice(key.lastIndexOf(':') + 1);
  if (failed.length > 0) {
    const steps = failed.map(stepId).join(', ');
    throw new ReplayRefusedError(
      `job ${String(job.id)} is a workflow whose step ${steps} failed: replay that step first, then this job once it has completed`,
    );
  }
  if (unprocessed.length > 0) {
    const steps = unprocessed.map(stepId).join(', ');
    throw new ReplayRefusedError(
      `job ${String(job.id)} is a workflow whose step ${steps} has not completed yet: replay this job once it has`,
    );
  }
}

/** The job with this id in whichever queue holds it (ids do not name their queue). */
export async function findJob(
  queues: readonly Queue[],
  id: string,
): Promise<Job<JobData> | undefined> {
  const found = await Promise.all(queues.map((queue) => Job.fromId<JobData>(queue, id)));
  return found.find((job) => job !== undefined);
}
