// The offloader core. It knows nothing of routes, jobs or workers: the job list is handed to it.
export { backoffDelay, defineJob, DEFAULT_RETRY } from './define.js';
export type { AnyJob, JobContext, JobDefinition, RetryPolicy } from './define.js';
export {
  InvalidEnqueueOptionsError,
  InvalidJobInputError,
  JobCancelledError,
  JobTimeoutError,
  PermanentError,
  QueueUnavailableError,
  RetryLaterError,
} from './errors.js';
export { runJob } from './execute.js';
export { createInlineOffloader } from './inline.js';
export { child } from './offloader.js';
export { chain, chord, chunks, group, step } from './workflow.js';
export type { FailurePolicy, Workflow } from './workflow.js';
export type { Accepted, ChildJob, EnqueueOptions, JobData, Offloader } from './offloader.js';
export { JOB_ID } from './ids.js';
export { createQueueOffloader, jobOptions, RETENTION, retention } from './queue.js';
export type { Retention } from './queue.js';
export { createRegistry } from './registry.js';
export type { Registry } from './registry.js';
export { startRunner } from './runner.js';
export type { Runner } from './runner.js';
export type { JobTracing, Outcome, RunOutcome, TracedRun } from './tracing.js';
export { FINAL_STATES } from './status.js';
export type { JobState, JobStatus } from './status.js';
export { sendAccepted, statusUrl } from './express.js';
