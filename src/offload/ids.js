// Job ids: random UUIDs (122 random bits: a status URL is a capability, not a counter), or,
// for an idempotency key, a UUID derived from the job's name and the key, so a repeated
// request lands on the same id and BullMQ adds nothing the second time.
import { createHash, randomUUID } from 'node:crypto';
/** Any id this module makes: version 4 (random) or 8 (derived from a key). */
export const JOB_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[48][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
export function jobIdFor(jobName, key) {
    if (key === undefined)
        return randomUUID();
    const hash = createHash('sha256').update(`${jobName}\n${key}`).digest();
    hash[6] = ((hash[6] ?? 0) & 0x0f) | 0x80; // version 8: a custom (here, hashed) UUID
    hash[8] = ((hash[8] ?? 0) & 0x3f) | 0x80; // the RFC 9562 variant
    const hex = hash.subarray(0, 16).toString('hex');
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
/** Children of a workflow get `<parent id>.<n>`: events about them can find their parent. */
export const childId = (parentId, index) => `${parentId}.${index}`;
export const parentIdOf = (id) => /^(.+)\.\d+$/.exec(id)?.[1];
