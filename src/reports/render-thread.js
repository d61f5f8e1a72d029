// Runs inside a worker thread (see render-pool.ts): PDF rendering is CPU work that would
// otherwise stall the worker's event loop, and with it the lock renewals of every active job.
import { move, transferableSymbol, valueSymbol } from 'piscina';
import { renderCard } from './card.js';
import { cardFileName } from './store.js';
export default async function render({ students, title, issued }) {
    const names = [];
    const pdfs = [];
    for (const student of students) {
        pdfs.push(await renderCard(student, { title, issued: new Date(issued), code: student.id }));
        names.push(cardFileName(student));
    }
    // Small buffers share Node's 8 KiB slabs, and a cloned view clones its whole slab: the cards
    // would cross as many buffers, each copied and later swept on the other side. One buffer of
    // their own, moved (not copied) to the main thread, is one allocation and no copy there.
    const all = new Uint8Array(new ArrayBuffer(pdfs.reduce((sum, pdf) => sum + pdf.length, 0)));
    const ends = [];
    for (const pdf of pdfs) {
        const start = ends.at(-1) ?? 0;
        all.set(pdf, start);
        ends.push(start + pdf.length);
    }
    const batch = { names, ends, pdfs: all };
    return move({ [transferableSymbol]: [all.buffer], [valueSymbol]: batch });
}
