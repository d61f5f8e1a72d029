import { z } from 'zod';
import { defineJob } from '../src/offload/index.js';
/** What the app stores only for a while: uploads and what is made of them, and reports. */
export const TEMPORARY_PREFIXES = ['uploads/', 'thumbnails/', 'reports/'];
/**
 * Every hour, deletes temporary files older than FILE_MAX_AGE_HOURS (their signed links have
 * expired by then). Declared as a schedule, so workers keep exactly one scheduler for it.
 */
export default defineJob({
    name: 'clean-storage',
    queue: 'media',
    input: z.strictObject({}),
    schedule: { everyMs: 3_600_000 },
    retry: { attempts: 2, backoff: 'fixed', delayMs: 60_000 },
    timeoutMs: 10 * 60_000,
    async run(_input, { deps, log, signal }) {
        const { storage, config } = deps;
        const cutoff = Date.now() - config.FILE_MAX_AGE_HOURS * 3_600_000;
        let deleted = 0;
        let kept = 0;
        for (const prefix of TEMPORARY_PREFIXES) {
            for await (const file of storage.list(prefix)) {
                signal.throwIfAborted();
                if (file.modifiedAt.getTime() >= cutoff) {
                    kept += 1;
                    continue;
                }
                await storage.delete(file.key);
                deleted += 1;
            }
        }
        log.info({ deleted, kept }, 'old files deleted');
        return { deleted, kept };
    },
});
