// Where a report's files live in storage, what its cards are called inside the zip, and
// reading the roster back in jobs.
import { readStored, type Storage } from '../storage/index.js';
import type { Student } from './roster.js';

export const rosterKey = (reportId: string) => `reports/${reportId}/roster.json`;
/** One chunk's cards, as a zip of stored (uncompressed) PDFs; `from` is its first row. */
export const chunkKey = (reportId: string, from: number) =>
  `reports/${reportId}/chunks/${String(from).padStart(5, '0')}.zip`;
/** What the email links to. */
export const zipKey = (reportId: string) => `reports/${reportId}/id-cards-${reportId}.zip`;

/** `S00042-ada-lovelace.pdf`: ids are unique and file-name safe; the name helps people. */
export function cardFileName(student: Student): string {
  const slug = student.name
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '') // accents off: é → e
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-|-$/g, '')
    .slice(0, 40);
  return `${student.id}${slug ? `-${slug}` : ''}.pdf`;
}

/** The roster as the route stored it (validated then). */
export async function readRoster(storage: Storage, reportId: string): Promise<Student[]> {
  return JSON.parse((await readStored(storage, rosterKey(reportId))).toString('utf8')) as Student[];
}
