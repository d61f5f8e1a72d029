// The core's types in one module, so that the modules they join (a job's definition and the
// offloader it may enqueue with, a workflow and the jobs in it, a status and the data it is read
// from) import them, not each other: the core has no import cycle, type-only ones included.
import type { z } from 'zod';
import type { Logger } from './logger.js';
import type { SqlClient } from './sql.js';

export interface RetryPolicy {
  /** Total runs, the first included. */
  attempts: number;
  backoff: 'fixed' | 'exponential';
  /** The first retry's delay; exponential doubles it each time. */
  delayMs: number;
  /** No retry waits longer than this (exponential backoff grows fast). */
  maxDelayMs?: number;
  /** 0..1: each delay is randomly shortened by up to this fraction, so retries do not stampede. */
  jitter?: number;
}

export interface JobContext<Deps = unknown> {
  jobId: string;
  /** 1 on the first run. */
  attempt: number;
  /** A child logger that carries the job id and the request id that enqueued it. */
  log: Logger;
  /** Fires on cancel, time limit or shutdown: long work should check it and stop. */
  signal: AbortSignal;
  /** 0..100, or any small JSON the status page can show. */
  progress(value: number | object): Promise<void>;
  /** What the process handed to every job (mailer, storage, ...): the runner's `deps`. */
  deps: Deps;
  /** Enqueues a follow-up job (give it a `key` so a re-run of this job does not add it twice). */
  enqueue: Offloader['enqueue'];
  /**
   * The results of the jobs this one waited for (a workflow's earlier steps, see workflow.ts),
   * in order; a step that failed under the `continue` policy is missing from it.
   */
  results(): Promise<unknown[]>;
}

/**
 * Runs a job periodically, like Celery beat: every `everyMs`, or on a cron pattern (in `tz`,
 * UTC by default). Each run gets `input` (default `{}`), validated like any other.
 */
export type Schedule<Input = unknown> = ({ everyMs: number } | { cron: string; tz?: string }) & {
  input?: Input;
};

export interface JobDefinition<
  Schema extends z.ZodType = z.ZodType,
  Result = unknown,
  Deps = never,
> {
  /** Equals the file name in jobs/; unique. */
  name: string;
  /** Named queue: workers can be started for some queues only (WORKER_QUEUES). */
  queue: string;
  /** Validated at enqueue and again in the worker: jobs already in Redis may be old. */
  input: Schema;
  retry: RetryPolicy;
  /**
   * Time limit for one run. When it passes the job's signal fires; the run fails with a
   * JobTimeoutError once the handler stops, or after `timeoutGraceMs` if it does not, and
   * whatever it returns late is discarded.
   */
  timeoutMs: number;
  /** How long a handler gets to stop after its signal fires (time limit or cancel). */
  timeoutGraceMs: number;
  /** Periodic runs, kept in Redis as a BullMQ job scheduler (see schedules.ts). */
  schedule?: Schedule<z.input<Schema>>;
  run(input: z.output<Schema>, ctx: JobContext<Deps>): Promise<Result>;
}

/**
 * Any job, whatever its input, result and dependencies: what registries and runners hold.
 * (`run` is declared as a method, so its parameters compare bivariantly and every job fits.)
 */
export type AnyJob = JobDefinition<z.ZodType, unknown, unknown>;

// Workflows: see workflow.ts.

/**
 * What a job waiting for others does when one of them fails for good: `fail` (it fails too,
 * without running: the default) or `continue` (it runs with the results of those that
 * completed).
 */
export type FailurePolicy = 'fail' | 'continue';

export interface Step {
  kind: 'step';
  job: AnyJob;
  input: unknown;
}
export interface Group {
  kind: 'group';
  members: readonly Workflow[];
  onFailure: FailurePolicy;
}
export interface Chain {
  kind: 'chain';
  steps: readonly Workflow[];
}
export type Workflow = Step | Group | Chain;

/**
 * The states a caller can see. BullMQ's `prioritized` and `waiting-children` read as waiting;
 * `expired` and `cancelled` are ours (BullMQ has neither): see `toStatus`.
 */
export type JobState =
  'waiting' | 'delayed' | 'active' | 'completed' | 'failed' | 'expired' | 'cancelled';

/** What `GET /jobs/:id` shows. Never the job's input: it may hold personal data. */
export interface JobStatus {
  id: string;
  name: string;
  state: JobState;
  progress: unknown;
  result?: unknown;
  error?: string;
  /** Runs started so far, retries included. */
  attempts: number;
  createdAt: string;
  startedAt?: string;
  finishedAt?: string;
}

export interface EnqueueOptions {
  /** Countdown: run no sooner than this many ms from now. */
  delayMs?: number;
  /** ETA: run no sooner than this moment (a Date or epoch ms); instead of `delayMs`. */
  at?: Date | number;
  /** Expiry: a job not started by then never runs, and ends `expired`. */
  expiresAt?: Date | number;
  /** Expiry, relative to now; instead of `expiresAt`. */
  expiresInMs?: number;
  /** 1 (highest) .. 2_097_152; jobs without a priority go first. */
  priority?: number;
  /** Last in, first out: this job goes to the front of its queue (e.g. the freshest request). */
  lifo?: boolean;
  /** The HTTP request that asked for the job, so one grep follows it into the worker. */
  requestId?: string;
  /**
   * Idempotency key, bound to the request it first came with (its `fingerprint`) for the
   * completed-job retention (RESULT_TTL, 24 h): the same request again returns the first job
   * instead of adding another, even when the calls race; another request with that key throws
   * IdempotencyConflictError and adds nothing. Keys are scoped per job (the accepted job's
   * name); add the caller to them (`${userId}:${key}`) when callers must not share keys. The
   * job id is derived from the key, so use keys nobody can guess (a status URL is a capability).
   */
  key?: string;
  /**
   * What a `key` is bound to: by default the job's name and validated input (a workflow's: every
   * job's). Routes pass one of the HTTP request instead (its route and validated body).
   */
  fingerprint?: string;
  /**
   * A small JSON description of the request for the 202 body (an upload's size...). With a
   * `key` it is stored with the key, so a replay describes the first request, not the current.
   */
  summary?: Record<string, unknown>;
  /**
   * Jobs to run first, in parallel (Celery's chord): this job starts once all have completed,
   * and fails, without running, if one of them fails after its retries. Their progress, when
   * reported as `{done, total}`, adds up into this job's status.
   */
  children?: readonly Step[];
  /**
   * How many units of work (cards, rows...) the children report in all, so a workflow's
   * progress shows `{done, total}` from the start, before every child has reported.
   */
  progressTotal?: number;
  /**
   * The caller's database transaction (opened with `transaction()` from outbox.ts): the job is
   * recorded in it, in the outbox table, and relayed to the queue after the commit, so a
   * rollback never runs it and a commit always does. Inline, the job runs after the commit.
   */
  tx?: SqlClient;
}

/** `enqueueMany`'s options: those of `enqueue` that fit every job of a batch. */
export type ManyOptions = Omit<
  EnqueueOptions,
  'key' | 'fingerprint' | 'summary' | 'children' | 'progressTotal' | 'tx'
>;

/** A chord's header job, made with `child()` (= `step()`). */
export type ChildJob = Step;
/** What an enqueue answers: enough for a 202 and a status URL. */
export interface Accepted {
  id: string;
  name: string;
  state: JobState;
  /** A keyed enqueue met the job an earlier call with that key added: this is that job. */
  replayed?: true;
  /** The request's `summary`: for a replay, the first request's (stored with the key). */
  summary?: Record<string, unknown>;
}

/** What `cancel` did: `changed` is false when the job had already ended (cancelled included). */
export interface CancelOutcome {
  status: JobStatus;
  changed: boolean;
}

/** Something happened to a job: its status changed, or it reported progress. */
export type JobEventListener = (status: JobStatus) => void;

/** The app's one handle on background work, whatever the mode. */
export interface Offloader {
  readonly mode: 'queue' | 'embedded' | 'inline';
  enqueue<Schema extends z.ZodType>(
    job: JobDefinition<Schema>,
    input: z.input<Schema>,
    options?: EnqueueOptions,
  ): Promise<Accepted>;
  /**
   * Many jobs of one kind in one round trip (BullMQ's addBulk), e.g. a mail to each of 1,000
   * users. Every input is checked first, so one bad input adds none. The options apply to each
   * job; a `key` or `children` are refused (enqueue such jobs one by one). Answers in order.
   */
  enqueueMany<Schema extends z.ZodType>(
    job: JobDefinition<Schema>,
    inputs: readonly z.input<Schema>[],
    options?: ManyOptions,
  ): Promise<Accepted[]>;
  /**
   * Starts a workflow (see workflow.ts: chain, group, chord, chunks); the accepted job is its
   * last step (a lone group's is a job that collects its members' results).
   */
  start(workflow: Workflow, options?: Omit<EnqueueOptions, 'children'>): Promise<Accepted>;
  /** null for an unknown id (or one whose retention passed). */
  status(id: string): Promise<JobStatus | null>;
  /**
   * Cancels a job that has not finished: a waiting or delayed one never runs, an active one's
   * signal fires in whichever process runs it; a workflow's unfinished steps go with it.
   * Answers the status after (`cancelled`, or the final state it had already reached) and
   * whether this call changed it, or null for an unknown id.
   */
  cancel(id: string): Promise<CancelOutcome | null>;
  /** Calls `listener` with the fresh status whenever the job changes; returns unsubscribe. */
  watch(id: string, listener: JobEventListener): Promise<() => void>;
  /** Resolves when the queue backend answers; rejects with the reason otherwise. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** The payload stored in Redis: the validated input and where it came from. */
export interface JobData {
  input: unknown;
  requestId?: string;
  /** A workflow parent's number of children: only such a job has children to look up. */
  children?: number;
  /** A workflow parent's `progressTotal`. */
  progressTotal?: number;
  /** Epoch ms after which the job must not start. */
  expiresAt?: number;
  /** Set when the job was cancelled, or dropped at pickup as expired: see status.ts. */
  outcome?: 'cancelled' | 'expired';
  /** When that happened (epoch ms). */
  outcomeAt?: number;
  /** Why, in plain words, for the status's `error`. */
  reason?: string;
  /** Set with `outcome`: its enqueue was refused (answered 503), see settle.ts. */
  refused?: true;
  /** A keyed enqueue's own random mark: tells its own job from an earlier call's. */
  claim?: string;
}
