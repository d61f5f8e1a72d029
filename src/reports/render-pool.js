// ID cards are rendered on worker threads (piscina): the worker process's event loop stays
// free to renew job locks while PDFs are drawn. The pool starts on first use, so processes
// that never render (web) start no threads.
import { Piscina } from 'piscina';
// Under tsx (dev, tests) this module is TypeScript, and so is the thread's entry.
const threadFile = new URL(import.meta.url.endsWith('.ts') ? './render-thread.ts' : './render-thread.js', import.meta.url).href;
/** `threads` per process: scale rendering with worker processes (one core each), or raise it. */
export function createCardRenderer({ threads }) {
    let pool;
    return {
        async render(task, signal) {
            // Idle threads linger a while, so the chunks of one report reuse them warm.
            pool ??= new Piscina({
                filename: threadFile,
                maxThreads: threads,
                minThreads: 0,
                idleTimeout: 30_000,
            });
            // Piscina terminates a thread whose task is aborted while it runs (a new one replaces it).
            const { names, ends, pdfs } = await pool.run(task, signal ? { signal } : {});
            // Each card a view into the one buffer the thread moved here.
            return names.map((name, i) => ({ name, pdf: pdfs.subarray(ends[i - 1] ?? 0, ends[i]) }));
        },
        async close() {
            await pool?.destroy();
            pool = undefined;
        },
    };
}
