import { isConnectionError } from '../redis.js';
export const cancelChannel = (prefix) => `${prefix}:offload:cancel`;
/** How long a cancel for a job this process does not hold is remembered (see `recent`). */
const REMEMBER_MS = 60_000;
/**
 * Subscribes (on its own connection: a subscriber can do nothing else) and calls `abort(id)`
 * for each cancel; `abort` answers whether this process held the job.
 */
export function listenForCancels(options) {
    const { prefix, abort, log } = options;
    const subscriber = options.connection.duplicate();
    subscriber.on('error', (error) => {
        if (!isConnectionError(error))
            log.warn({ err: error }, 'cancel listener error');
    });
    const unheld = new Map();
    subscriber.on('message', (_channel, id) => {
        if (abort(id)) {
            log.info({ jobId: id }, 'job cancelled: aborting it');
            return;
        }
        const now = Date.now();
        unheld.set(id, now);
        for (const [old, at] of unheld) {
            if (now - at < REMEMBER_MS)
                break; // oldest first: the rest are younger
            unheld.delete(old);
        }
    });
    // ioredis subscribes again by itself after a reconnect.
    subscriber.subscribe(cancelChannel(prefix)).catch((error) => {
        log.error({ err: error }, 'could not listen for cancels');
    });
    return {
        recent: (id) => unheld.has(id),
        async close() {
            await subscriber.quit().catch(() => subscriber.disconnect());
        },
    };
}
