// The outbox in /metrics: how many committed jobs wait to be relayed, and for how long.
import { Gauge, type Registry } from 'prom-client';
import type { Outbox } from '../offload/index.js';

export function registerOutboxMetrics(
  registry: Registry,
  outbox: Outbox,
  log: { warn(o: object, m: string): void },
): void {
  // One query per scrape serves both gauges.
  let last: Promise<{ depth: number; oldestAgeSeconds: number } | undefined> | undefined;
  const read = () => {
    last ??= outbox.depth().then(
      (value) => value,
      (error: unknown) => {
        log.warn({ err: error }, 'could not read the outbox depth');
        return undefined;
      },
    );
    setImmediate(() => (last = undefined));
    return last;
  };
  new Gauge({
    name: 'offload_outbox_depth',
    help: 'Jobs committed in the outbox and not yet relayed to the queue',
    registers: [registry],
    async collect() {
      const value = await read();
      if (value) this.set(value.depth);
    },
  });
  new Gauge({
    name: 'offload_outbox_oldest_age_seconds',
    help: 'Age of the oldest outbox row not yet relayed (0 when none)',
    registers: [registry],
    async collect() {
      const value = await read();
      if (value) this.set(value.oldestAgeSeconds);
    },
  });
}
