// How the queue offloader reads a job's status: the BullMQ job and its state, as a caller sees
// them (status.ts), with a workflow's progress and failure from its children.
import type { QueueBackend } from './queue-backend.js';
import { childrenProgress, failedChildOf } from './queue-progress.js';
import { FINAL_STATES, toState, toStatus } from './status.js';
import type { JobStatus } from './types.js';

/** The status of the job with this id; null for an unknown one. */
export async function readStatus(backend: QueueBackend, id: string): Promise<JobStatus | null> {
  const { find, whenConnected } = backend;
  const found = await find(id);
  if (!found) return null;
  const [state, family] = await Promise.all([
    whenConnected(() => found.getState()),
    whenConnected(() => childrenProgress(backend, found)),
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
    const childFailure = await whenConnected(() => failedChildOf(backend, job));
    if (childFailure) {
      // A worker took the parent only to fail it: its own code never ran (as inline).
      current.error = childFailure;
      current.attempts = 0;
      delete current.startedAt;
    }
  }
  return current;
}
