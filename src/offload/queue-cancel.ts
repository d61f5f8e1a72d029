// How the queue offloader cancels a job: it marks it (and a workflow's unfinished steps) in
// Redis, and tells whichever worker process holds it to stop (cancel.ts).
import type { Job } from 'bullmq';
import { cancelChannel } from './cancel.js';
import { CANCELLED } from './errors.js';
import type { QueueBackend } from './queue-backend.js';
import { readStatus } from './queue-status.js';
import { FINAL_STATES, toStatus } from './status.js';
import type { CancelOutcome, JobData } from './types.js';

/** See Offloader.cancel. `notify` tells the job's watchers at once. */
export async function cancelJob(
  backend: QueueBackend,
  notify: (id: string) => void,
  id: string,
): Promise<CancelOutcome | null> {
  const job = await backend.find(id);
  if (!job) return null;
  const current = toStatus(job, await backend.whenConnected(() => job.getState()));
  if (FINAL_STATES.has(current.state))
    return { status: (await readStatus(backend, id)) ?? current, changed: false };
  await markCancelled(backend, notify, job, current.state);
  return { status: (await readStatus(backend, id)) ?? current, changed: true };
}

/** Marks a job and its unfinished steps cancelled, and stops whichever worker runs them. */
async function markCancelled(
  backend: QueueBackend,
  notify: (id: string) => void,
  job: Job<JobData>,
  state: string,
): Promise<void> {
  const { connection, prefix, find, whenConnected } = backend;
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
      if (!FINAL_STATES.has(stepState)) await markCancelled(backend, notify, step, stepState);
    }
  }
}
