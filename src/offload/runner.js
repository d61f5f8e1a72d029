import { DelayedError, Queue, UnrecoverableError, WaitingError, Worker, } from 'bullmq';
import { isConnectionError } from '../redis.js';
import { listenForCancels } from './cancel.js';
import { backoffDelay, DEFAULT_RETRY } from './define.js';
import { CANCEL_REASON, JobCancelledError, PermanentError, RetryLaterError } from './errors.js';
import { startJob } from './execute.js';
import { createQueueOffloader, RETENTION } from './queue.js';
import { reconcileSchedules } from './schedules.js';
/** Why a job's signal fired when the worker is stopping. */
class WorkerShutdownError extends Error {
    name = 'WorkerShutdownError';
    constructor() {
        super('worker shutting down');
    }
}
/**
 * Retry-laters spend no attempt, so a job that is turned away forever would never end: after
 * this many pickups beyond its attempts, a retry-later counts as a failed attempt.
 */
const MAX_DEFERRALS = 25;
/** Starts one BullMQ worker per queue; each runs the registry's jobs of that queue. */
export function startRunner(options) {
    const { registry, log } = options;
    const queues = options.queues === '*' ? registry.queues : options.queues;
    const unknown = queues.filter((name) => !registry.queues.includes(name));
    if (unknown.length > 0) {
        throw new Error(`WORKER_QUEUES names queues no job uses: ${unknown.join(', ')} (known: ${registry.queues.join(', ')})`);
    }
    for (const [setting, named] of Object.entries({
        QUEUE_CONCURRENCY: options.concurrency.queues ?? {},
        QUEUE_RATE_LIMIT: options.rateLimits ?? {},
    })) {
        const strangers = Object.keys(named).filter((name) => !registry.queues.includes(name));
        if (strangers.length > 0) {
            throw new Error(`${setting} names queues no job uses: ${strangers.join(', ')}`);
        }
    }
    // Jobs enqueue follow-ups through the worker's connection. Like any enqueue it fails at once
    // while Redis is unreachable, and the job is retried later.
    const followUps = createQueueOffloader({
        registry,
        connection: options.connection,
        eventsConnection: () => {
            throw new Error('jobs do not watch other jobs');
        },
        prefix: options.prefix,
        log,
        retention: options.retention ?? RETENTION,
    });
    const enqueue = followUps.enqueue.bind(followUps);
    const workers = new Map();
    // For RetryLaterError's queue scope: made on first use, most queues never need one.
    const limiters = new Map();
    const limiterOf = (name) => {
        let queue = limiters.get(name);
        if (!queue) {
            queue = new Queue(name, { connection: options.connection, prefix: options.prefix });
            queue.on('error', (error) => {
                if (!isConnectionError(error))
                    log.warn({ err: error, queue: name }, 'queue error');
            });
            limiters.set(name, queue);
        }
        return queue;
    };
    /** Ends a job without running it (again): it reads `outcome` from now on. */
    async function drop(job, outcome, at) {
        if (job.data.outcome !== outcome)
            await job.updateData({ ...job.data, outcome, outcomeAt: at });
        // A retry is a start too (as with Celery's `expires`): past the expiry, none happens.
        const start = job.attemptsMade > 0 ? 'retried' : 'started';
        throw new UnrecoverableError(outcome === 'expired'
            ? `expired: not ${start} by ${new Date(at).toISOString()}`
            : CANCEL_REASON);
    }
    // The runs under way in this process, by job id: cancels and the shutdown stop them. (Not
    // BullMQ's own signal: it would make an AbortController for every job, see execute.ts.)
    const running = new Map();
    async function process(job, token) {
        const definition = registry.get(job.name);
        if (!definition)
            throw new UnrecoverableError(`no job named "${job.name}" in this worker`);
        const jobLog = log.child({
            jobId: job.id,
            job: job.name,
            reqId: job.data.requestId,
            attempt: job.attemptsStarted,
        });
        const started = Date.now();
        const { expiresAt, outcome } = job.data;
        if (outcome === 'cancelled' || cancels.recent(String(job.id))) {
            jobLog.info('job cancelled before it started: dropped');
            await drop(job, 'cancelled', job.data.outcomeAt ?? started);
        }
        if (expiresAt !== undefined && started > expiresAt) {
            jobLog.warn({ expiresAt: new Date(expiresAt).toISOString() }, 'job expired: dropped');
            await drop(job, 'expired', expiresAt);
        }
        jobLog.info({ waitedMs: started - job.timestamp }, 'job started');
        const id = String(job.id);
        const run = startJob(definition, job.data.input, {
            jobId: id,
            attempt: job.attemptsStarted,
            log: jobLog,
            deps: options.deps,
            enqueue,
            results: async () => inOrder(await job.getChildrenValues()),
            progress: (value) => job.updateProgress(value),
        });
        running.set(id, run);
        try {
            const result = await run.result;
            jobLog.info({ durationMs: Date.now() - started }, 'job completed');
            return result;
        }
        catch (error) {
            if (run.reason instanceof WorkerShutdownError) {
                // Not a failure: hand the job back without spending an attempt.
                await job.moveToWait(token);
                jobLog.warn('job interrupted by shutdown, put back in its queue');
                throw new WaitingError();
            }
            if (run.reason instanceof JobCancelledError) {
                jobLog.info({ durationMs: Date.now() - started }, 'job cancelled while running');
                await drop(job, 'cancelled', job.data.outcomeAt ?? Date.now());
            }
            const deferrals = job.attemptsStarted - job.attemptsMade - 1;
            if (error instanceof RetryLaterError && deferrals < MAX_DEFERRALS) {
                jobLog.info({ delayMs: error.delayMs, scope: error.scope }, `retry later: ${error.message}`);
                if (error.scope === 'queue') {
                    // The whole queue waits, in every worker; this job goes back to the front.
                    await limiterOf(job.queueName).rateLimit(error.delayMs);
                    throw Worker.RateLimitError();
                }
                await job.moveToDelayed(Date.now() + error.delayMs, token);
                throw new DelayedError();
            }
            const permanent = error instanceof PermanentError;
            jobLog.warn({ err: error, durationMs: Date.now() - started, permanent }, 'job failed');
            if (permanent)
                throw new UnrecoverableError(error.message);
            throw error;
        }
        finally {
            running.delete(id);
        }
    }
    for (const name of queues) {
        const limiter = options.rateLimits?.[name];
        const worker = new Worker(name, process, {
            connection: options.connection,
            prefix: options.prefix,
            concurrency: options.concurrency.queues?.[name] ?? options.concurrency.default,
            lockDuration: options.lockMs,
            stalledInterval: options.stalledIntervalMs,
            // Every worker gets a limiter: BullMQ reads a queue's rate-limit key only in workers
            // that have one, and a queue-scope RetryLaterError sets that key to pause them all.
            limiter: limiter
                ? { max: limiter.max, duration: limiter.durationMs }
                : { max: Number.MAX_SAFE_INTEGER, duration: 1_000 },
            settings: {
                backoffStrategy: (attemptsMade, _type, _error, job) => backoffDelay((job && registry.get(job.name)?.retry) ?? DEFAULT_RETRY, attemptsMade),
            },
        });
        worker.on('error', (error) => {
            if (!isConnectionError(error))
                log.warn({ err: error, queue: name }, 'worker error');
        });
        // Once per job that is out of attempts (BullMQ's event fires for every failed attempt):
        // the dead-letter line an alert can follow (list and replay them: see dead-letters.ts).
        worker.on('failed', (job, error) => {
            if (job?.finishedOn && !job.data.outcome) {
                log.error({
                    jobId: job.id,
                    job: job.name,
                    reqId: job.data.requestId,
                    attempts: job.attemptsMade,
                    err: error,
                }, 'job failed for good: dead-lettered');
            }
        });
        workers.set(name, worker);
    }
    log.info({ queues, concurrency: options.concurrency, rateLimits: options.rateLimits }, 'consuming queues');
    const cancels = listenForCancels({
        connection: options.connection,
        prefix: options.prefix,
        abort(id) {
            running.get(id)?.abort(new JobCancelledError());
            return running.has(id);
        },
        log,
    });
    // The worker connection waits for Redis, so this completes once Redis is there.
    const schedules = reconcileSchedules({ ...options, queues }).catch((error) => {
        log.error({ err: error }, 'could not set the schedules');
    });
    return {
        queues,
        schedules,
        async close(deadline) {
            const closing = Promise.all([
                ...[...workers.values()].map((worker) => worker.close()),
                schedules,
            ]);
            const timer = setTimeout(() => {
                for (const run of running.values())
                    run.abort(new WorkerShutdownError());
            }, Math.max(0, deadline - Date.now()));
            try {
                await closing;
            }
            finally {
                clearTimeout(timer);
            }
            await Promise.all([
                followUps.close(),
                cancels.close(),
                ...[...limiters.values()].map((queue) => queue.close()),
            ]);
        },
    };
}
/** Children's results by their ids' step numbers (`<parent>.<n>`, see ids.ts), not hash order. */
function inOrder(values) {
    const step = (key) => Number(/\.(\d+)$/.exec(key)?.[1] ?? 0);
    return Object.keys(values)
        .sort((a, b) => step(a) - step(b))
        .map((key) => values[key]);
}
