import { once } from 'node:events';
import { PassThrough } from 'node:stream';
import { z } from 'zod';
import { defineJob, PermanentError } from '../src/offload/index.js';
import { cardFileName, chunkKey, readRoster, zipKey } from '../src/reports/store.js';
import { readStoredZip, storedZipWriter } from '../src/reports/zip.js';
import { readStored } from '../src/storage/index.js';
import sendEmail from './send-email.js';
/**
 * The last step of a report, run once every chunk has rendered (a workflow's parent: Celery's
 * chord callback). Copies every card from the chunk zips into one zip, one chunk in memory at
 * a time, stores it, and enqueues the email with its link under a key: a re-run of this step
 * rebuilds the same zip and sends no second email.
 */
export default defineJob({
    name: 'zip-report',
    queue: 'reports',
    input: z.strictObject({
        reportId: z.uuid(),
        email: z.email().max(254),
        issued: z.iso.date(),
        chunkSize: z.int().min(1),
    }),
    retry: { attempts: 3, backoff: 'exponential', delayMs: 2_000, jitter: 0.2 },
    timeoutMs: 5 * 60_000,
    async run({ reportId, email, issued, chunkSize }, ctx) {
        const { storage, signer, config } = ctx.deps;
        const students = await readRoster(storage, reportId);
        const zip = storedZipWriter({ mtime: new Date(issued) });
        const output = new PassThrough();
        const storing = storage.put(zipKey(reportId), output);
        // Awaited further down; failing before that must not count as an unhandled rejection.
        storing.catch(() => undefined);
        try {
            for (let from = 0; from < students.length; from += chunkSize) {
                const key = chunkKey(reportId, from);
                const stored = await readStored(storage, key);
                const chunk = await readStoredZip(stored).catch((error) => {
                    // render-cards wrote it and it does not read: a retry would read the same bytes.
                    throw new PermanentError(`${key} is not a chunk zip: ${error.message}`);
                });
                // Every card in roster order, each checked present; its bytes and CRC are copied, not
                // recomputed. One write per chunk, and only that chunk in memory.
                const cards = students.slice(from, from + chunkSize).map((student) => {
                    const name = cardFileName(student);
                    const card = chunk.get(name);
                    if (!card)
                        throw new PermanentError(`card ${name} is missing from ${key}`);
                    return { name: `id-cards/${name}`, data: card.data, crc32: card.crc32 };
                });
                // Backpressure, or the whole zip would wait in memory for the disk. A failed write
                // rejects `storing` (and may never drain).
                if (!output.write(zip.add(cards)))
                    await Promise.race([once(output, 'drain'), storing]);
            }
            output.end(zip.end());
        }
        catch (error) {
            output.destroy(error); // the half-written zip is dropped, not stored
            await storing.catch(() => undefined);
            throw error;
        }
        const { bytes } = await storing;
        const mail = await ctx.enqueue(sendEmail, { template: 'report-ready', to: email, reportId, cards: students.length }, { key: `report-ready:${reportId}` });
        const url = signer.signUrl(zipKey(reportId), {
            expiresInMs: config.FILE_MAX_AGE_HOURS * 3_600_000,
        });
        return { cards: students.length, bytes, url, mailJobId: mail.id };
    },
});
