/** States a job never leaves (unless an admin replays it). */
export const FINAL_STATES = new Set([
    'completed',
    'failed',
    'expired',
    'cancelled',
]);
/** `{done, total}` from a job's progress, as stored (JSON text) or as reported; else undefined. */
export function parseProgress(value) {
    let parsed = value;
    if (typeof value === 'string') {
        try {
            parsed = JSON.parse(value);
        }
        catch {
            return undefined; // not JSON: a plain string is not a count
        }
    }
    const { done, total } = (parsed ?? {});
    return typeof done === 'number' && typeof total === 'number' ? { done, total } : undefined;
}
/** Adds up the `{done, total}` among `values` (anything else counts as nothing). */
export function sumProgress(values) {
    const sum = { done: 0, total: 0 };
    for (const value of values) {
        const progress = parseProgress(value);
        sum.done += progress?.done ?? 0;
        sum.total += progress?.total ?? 0;
    }
    return sum;
}
export function toState(bullState) {
    switch (bullState) {
        case 'completed':
        case 'failed':
        case 'active':
        case 'delayed':
            return bullState;
        default:
            return 'waiting';
    }
}
const iso = (ms) => (ms ? new Date(ms).toISOString() : undefined);
/**
 * A BullMQ job as a caller sees it. A job marked cancelled (or dropped at pickup as expired)
 * reads so at once, though a worker may not have taken it out of its queue yet; one still
 * waiting past its expiry reads as expired, since it can never run. A job that completed
 * anyway (its cancel came too late) reads as completed.
 */
export function toStatus(job, bullState, now = Date.now()) {
    let state = toState(bullState);
    const { outcome, outcomeAt, expiresAt } = job.data;
    const unstarted = state === 'waiting' || state === 'delayed';
    if (outcome && state !== 'completed')
        state = outcome;
    else if (unstarted && expiresAt !== undefined && now > expiresAt)
        state = 'expired';
    const finishedOn = job.finishedOn ?? (state === outcome ? outcomeAt : undefined);
    // Marked before its last pickup: that pickup only dropped it, the handler never ran.
    const dropped = outcome && outcomeAt !== undefined && outcomeAt <= (job.processedOn ?? 0);
    return {
        id: String(job.id),
        name: job.name,
        state,
        progress: job.progress,
        ...(state === 'completed' ? { result: job.returnvalue } : {}),
        // A delayed job with a reason is waiting to retry: the last error helps whoever watches.
        ...(job.failedReason ? { error: job.failedReason } : {}),
        ...(state === 'expired' && !job.failedReason
            ? { error: `not started by ${iso(expiresAt) ?? ''}` }
            : {}),
        attempts: dropped ? job.attemptsStarted - 1 : job.attemptsStarted,
        createdAt: new Date(job.timestamp).toISOString(),
        ...(job.processedOn && !dropped ? { startedAt: iso(job.processedOn) } : {}),
        ...(finishedOn ? { finishedAt: iso(finishedOn) } : {}),
    };
}
