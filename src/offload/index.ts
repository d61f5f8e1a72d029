// The offloader core. It knows nothing of routes, jobs or workers: the job list is handed to it.
export { backoffDelay, defineJob, DEFAULT_RETRY } from './define.js';
export type {
  Accepted,
  AnyJob,
  CancelOutcome,
  ChildJob,
  EnqueueOptions,
  FailurePolicy,
  JobContext,
  JobData,
  JobDefinition,
  JobState,
  JobStatus,
  Offloader,
  RetryPolicy,
  Workflow,
} from './types.js';
export {
  IdempotencyConflictError,
  InvalidIdempotencyKeyError,
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
export { fingerprint } from './idempotency.js';
export { JOB_ID } from './ids.js';
export { createQueueOffloader } from './queue.js';
export type { QueueOffloaderOptions } from './queue.js';
export { jobOptions, RETENTION, retention } from './job-options.js';
export type { Retention } from './job-options.js';
export { SETTLE_WAIT_MS } from './queue-submit.js';
export { createRegistry } from './registry.js';
export type { Registry } from './registry.js';
export { startRunner } from './runner.js';
export type { Runner } from './runner.js';
export type { JobTracing, Outcome, RunOutcome, TracedRun } from './tracing.js';
export { FINAL_STATES } from './status.js';
export {
  enqueueOptions,
  errorResponse,
  JOBS_PATH,
  keyedTo,
  offloadErrors,
  requestOptions,
  sendAccepted,
  statusUrl,
} from './express.js';
export { jobsRouter } from './router.js';
export type { JobsRouterOptions } from './router.js';
export { consoleLogger } from './logger.js';
export type { LogFn, Logger } from './logger.js';
export { isConnectionError } from './connection-error.js';
export {
  findJob,
  listDeadLetters,
  MAX_PAGE,
  ReplayRefusedError,
  replayDeadLetter,
  UnknownQueueError,
} from './dead-letters.js';
export type { DeadLetter, DeadLetterPage, DeadLetterSource } from './dead-letters.js';
export { createOutbox, OUTBOX_TABLE, transaction, withOutbox } from './outbox.js';
export type { Outbox, OutboxRow, TransactionalOptions } from './outbox.js';
export type { PooledClient, SqlClient } from './sql.js';
export { startRelay } from './relay.js';
export type { Relay, RelayOptions } from './relay.js';
