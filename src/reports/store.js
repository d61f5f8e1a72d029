// Where a report's files live in storage, what its cards are called inside the zip, and
// reading the roster back in jobs.
import { readStored } from '../storage/index.js';
export const rosterKey = (reportId) => `reports/${reportId}/roster.json`;
/** One chunk's cards, as a zip of stored (uncompressed) PDFs; `from` is its first row. */
export const chunkKey = (reportId, from) => `reports/${reportId}/chunks/${String(from).padStart(5, '0')}.zip`;
/** What the email links to. */
export const zipKey = (reportId) => `reports/${reportId}/id-cards-${reportId}.zip`;
/** `S00042-ada-lovelace.pdf`: ids are unique and file-name safe; the name helps people. */
export function cardFileName(student) {
    const slug = student.name
        .normalize('NFKD')
        .replace(/[\u0300-\u036f]/g, '') // accents off: é → e
        .toLowerCase()
        .replace(/[^a-z0-9]+/g, '-')
        .replace(/^-|-$/g, '')
        .slice(0, 40);
    return `${student.id}${slug ? `-${slug}` : ''}.pdf`;
}
// A roster never changes once stored (a new report gets a new id), and a worker process runs
// several chunks of one report at once and then its zip step: each would parse all of it again
// (2,000 rows: milliseconds, and garbage, on the event loop, per chunk). So the last few rosters
// read stay parsed, per storage; a failed read is not kept. Callers only read the rows.
const ROSTERS_KEPT = 2;
const rosters = new WeakMap();
/** The roster as the route stored it (validated then). */
export function readRoster(storage, reportId) {
    let kept = rosters.get(storage);
    if (!kept)
        rosters.set(storage, (kept = new Map()));
    let roster = kept.get(reportId);
    if (!roster) {
        roster = readStored(storage, rosterKey(reportId)).then((bytes) => JSON.parse(bytes.toString('utf8')));
        const reading = roster;
        reading.catch(() => {
            if (kept.get(reportId) === reading)
                kept.delete(reportId);
        });
        kept.set(reportId, roster);
        // The oldest first out (a Map keeps insertion order).
        for (const old of kept.keys())
            if (kept.size > ROSTERS_KEPT)
                kept.delete(old);
    }
    return roster;
}
