import { PassThrough } from 'node:stream';
import { z } from 'zod';
import { defineJob, PermanentError } from '../src/offload/index.js';
import { chunkKey, readRoster } from '../src/reports/store.js';
import { storedZipWriter } from '../src/reports/zip.js';
/**
 * Cards rendered per thread call; progress moves in steps this size. Each call also costs the
 * event loop a thread round trip, a Redis write (the progress) and a storage write, 1–2 ms of
 * its CPU, which competes with rendering once every core renders: 100 cards
 * (~0.15 s of rendering) keep that under 1 % and progress still moves in small steps.
 */
const BATCH = 100;
export const renderCardsInput = z.strictObject({
    reportId: z.uuid(),
    title: z.string().min(1).max(60),
    issued: z.iso.date(),
    /** The chunk: roster rows [from, to). */
    from: z.int().min(0),
    to: z.int().min(1),
});
/**
 * One chunk of a report: renders its students' ID cards (on worker threads, see
 * src/reports/render-pool.ts) and stores them as one zip of uncompressed PDFs. A chunk zip is
 * one storage write instead of hundreds; a re-run replaces it whole.
 */
export default defineJob({
    name: 'render-cards',
    queue: 'reports',
    input: renderCardsInput.refine((chunk) => chunk.to > chunk.from, 'to must be after from'),
    retry: { attempts: 3, backoff: 'exponential', delayMs: 2_000, jitter: 0.2 },
    timeoutMs: 5 * 60_000,
    async run({ reportId, title, issued, from, to }, ctx) {
        const { storage, cards } = ctx.deps;
        const roster = await readRoster(storage, reportId);
        const students = roster.slice(from, to);
        if (students.length !== to - from) {
            throw new PermanentError(`the roster has ${roster.length} rows, not ${to}`);
        }
        const zip = storedZipWriter({ mtime: new Date(issued) });
        const output = new PassThrough();
        const storing = storage.put(chunkKey(reportId, from), output);
        // Awaited further down; failing before that must not count as an unhandled rejection.
        storing.catch(() => undefined);
        const total = students.length;
        let done = 0;
        try {
            for (let at = 0; at < total; at += BATCH) {
                ctx.signal.throwIfAborted();
                const rendered = await cards.render({ students: students.slice(at, at + BATCH), title, issued }, ctx.signal);
                // One write per batch. The PDFs are stored as they are: compressed inside already,
                // deflating them again would cost time and save nothing.
                output.write(zip.add(rendered.map(({ name, pdf }) => ({ name, data: pdf }))));
                done += rendered.length;
                await ctx.progress({ done, total });
            }
            output.end(zip.end());
        }
        catch (error) {
            output.destroy(error); // the half-written chunk is dropped, not stored
            await storing.catch(() => undefined);
            throw error;
        }
        const { bytes } = await storing;
        return { cards: done, bytes };
    },
});
