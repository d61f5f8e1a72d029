// ID cards are rendered on worker threads (piscina): the worker process's event loop stays
// free to renew job locks while PDFs are drawn. The pool starts on first use, so processes
// that never render (web) start no threads.
import { Piscina } from 'piscina';
import type { RenderedCard, RenderTask } from './render-thread.js';

export interface CardRenderer {
  /** `signal` (the job's: cancel, time limit, shutdown) ends the thread mid-task. */
  render(task: RenderTask, signal?: AbortSignal): Promise<RenderedCard[]>;
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
    render(task, signal) {
      // Idle threads linger a while, so the chunks of one report reuse them warm.
      pool ??= new Piscina({
        filename: threadFile,
        maxThreads: threads,
        minThreads: 0,
        idleTimeout: 30_000,
      });
      // Piscina terminates a thread whose task is aborted while it runs (a new one replaces it).
      return pool.run(task, signal ? { signal } : {});
    },
    async close() {
      await pool?.destroy();
      pool = undefined;
    },
  };
}
