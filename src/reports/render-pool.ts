// ID cards are rendered on worker threads (piscina): the worker process's event loop stays
// free to renew job locks while PDFs are drawn. The pool starts on first use, so processes
// that never render (web) start no threads.
import { Piscina } from 'piscina';
import type { RenderedCard, RenderTask } from './render-thread.js';

export interface CardRenderer {
  render(task: RenderTask): Promise<RenderedCard[]>;
  close(): Promise<void>;
}

// Under tsx (dev, tests) this module is TypeScript, and so is the thread's entry.
const threadFile = new URL(
  import.meta.url.endsWith('.ts') ? './render-thread.ts' : './render-thread.js',
  import.meta.url,
).href;

/** `threads` per process: scale rendering with worker processes (one core each), or raise it. */
export function createCardRenderer({ threads }: { threads: number }): CardRenderer {
  let pool: Piscina<RenderTask, RenderedCard[]> | undefined;
  return {
    render(task) {
      // Idle threads linger a while, so the chunks of one report reuse them warm.
      pool ??= new Piscina({
        filename: threadFile,
        maxThreads: threads,
        minThreads: 0,
        idleTimeout: 30_000,
      });
      return pool.run(task);
    },
    async close() {
      await pool?.destroy();
      pool = undefined;
    },
  };
}
