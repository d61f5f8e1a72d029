// The offloader core. It knows nothing of routes, jobs or workers: the job list is handed to it.
export { backoffDelay, defineJob, DEFAULT_RETRY } from './define.js';
export type { AnyJob, JobContext, JobDefinition, RetryPolicy } from './define.js';
export {
  IdempotencyConflictError,
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
export type {
  Accepted,
  CancelOutcome,
  ChildJob,
  EnqueueOptions,
  JobData,
  Offloader,
} from './offloader.js';
export { fingerprint } from './idempotency.js';
export { JOB_ID } from './ids.js';
export { createQueueOffloader, jobOptions, RETENTION, retention, SETTLE_WAIT_MS } from './queue.js';
export type { Retention } from './queue.js';
export { createRegistry } from './registry.js';
export type { Registry } from './registry.js';
export { startRunner } from './runner.js';
export type { Runner } from './runner.js';
export type { JobTracing, Outcome, RunOutcome, TracedRun } from './tracing.js';
export { FINAL_STATES } from './status.js';
export type { JobState, JobStatus } from './status.js';
export { sendAccepted, statusUrl } from './express.js';
export { createOutbox, OUTBOX_TABLE, transaction, withOutbox } from './outbox.js';
export type { Outbox, OutboxRow, TransactionalOptions } from './outbox.js';
export type { PooledClient, SqlClient } from './sql.js';
export { startRelay } from './relay.js';
export type { Relay, RelayOptions } from './relay.js';
