// The reports suite's bare loop: ID cards rendered one after the other on one thread, nothing
// else (no worker thread, zip, storage, queue or mail). Run in the bench process (`bare`), and,
// forked as its own process with an IPC channel, two at once (`bare ×2`: what two processes get
// out of this machine). See bench/reports.ts.
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { renderCard } from '../src/reports/card.js';
import { sampleRoster } from '../src/reports/roster.js';

export interface BareTask {
  students: number;
  title: string;
  /** ISO date, as the report's jobs get it. */
  issued: string;
}

export interface BareReply {
  cards: number;
  seconds: number;
  /** CPU time of the process over the loop, µs. */
  cpu: number;
}

/** The loop: `for (const s of sampleRoster(n)) await renderCard(s, {title, issued, code: s.id})`. */
export async function renderAll({ students, title, issued }: BareTask): Promise<number> {
  const options = { title, issued: new Date(issued) }; // as src/reports/render-thread.ts passes it
  let cards = 0;
  for (const s of sampleRoster(students)) {
    await renderCard(s, { ...options, code: s.id });
    cards += 1;
  }
  return cards;
}

// Forked: one loop per message, answered with its time and CPU.
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  process.on('message', (task: BareTask) => {
    const cpu = process.cpuUsage();
    const begin = performance.now();
    void renderAll(task).then((cards) => {
      const { user, system } = process.cpuUsage(cpu);
      const reply: BareReply = {
        cards,
        seconds: (performance.now() - begin) / 1000,
        cpu: user + system,
      };
      process.send?.(reply);
    });
  });
}
