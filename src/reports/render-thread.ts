// Runs inside a worker thread (see render-pool.ts): PDF rendering is CPU work that would
// otherwise stall the worker's event loop, and with it the lock renewals of every active job.
import { renderCard } from './card.js';
import { cardFileName } from './store.js';
import type { Student } from './roster.js';

export interface RenderTask {
  students: Student[];
  title: string;
  /** ISO date printed on every card of the report (the same on a re-run). */
  issued: string;
}

export interface RenderedCard {
  name: string;
  pdf: Uint8Array;
}

export default async function render({ students, title, issued }: RenderTask) {
  const cards: RenderedCard[] = [];
  for (const student of students) {
    const pdf = await renderCard(student, { title, issued: new Date(issued), code: student.id });
    cards.push({ name: cardFileName(student), pdf });
  }
  return cards;
}
