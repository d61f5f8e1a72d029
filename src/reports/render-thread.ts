// Runs inside a worker thread (see render-pool.ts): PDF rendering is CPU work that would
// otherwise stall the worker's event loop, and with it the lock renewals of every active job.
import { move, transferableSymbol, valueSymbol } from 'piscina';
import { renderCard } from './card.js';
import { cardFileName } from './store.js';
import type { Student } from './roster.js';

export interface RenderTask {
  students: Student[];
  title: string;
  /** ISO date printed on every card of the report (the same on a re-run). */
  issued: string;
}

/** A task's cards, as the thread sends them back: every PDF in one buffer, end to end. */
export interface RenderedBatch {
  /** Each card's file name, in the students' order. */
  names: string[];
  /** Where each card's PDF ends in `pdfs` (the next one starts there). */
  ends: number[];
  pdfs: Uint8Array;
}

export default async function render({ students, title, issued }: RenderTask) {
  const names: string[] = [];
  const pdfs: Buffer[] = [];
  for (const student of students) {
    pdfs.push(await renderCard(student, { title, issued: new Date(issued), code: student.id }));
    names.push(cardFileName(student));
  }
  // Small buffers share Node's 8 KiB slabs, and a cloned view clones its whole slab: the cards
  // would cross as many buffers, each copied and later swept on the other side. One buffer of
  // their own, moved (not copied) to the main thread, is one allocation and no copy there.
  const all = new Uint8Array(new ArrayBuffer(pdfs.reduce((sum, pdf) => sum + pdf.length, 0)));
  const ends: number[] = [];
  for (const pdf of pdfs) {
    const start = ends.at(-1) ?? 0;
    all.set(pdf, start);
    ends.push(start + pdf.length);
  }
  const batch: RenderedBatch = { names, ends, pdfs: all };
  return move({ [transferableSymbol]: [all.buffer], [valueSymbol]: batch });
}
