// Preloaded into the worker process by the thumbnails and email suites (`node --import
// ./dist-bench/bench/worker-probe.js dist-bench/workers/main.js`, forked with an IPC channel);
// the worker itself is unchanged. On each 'probe' message it answers with its CPU time so far
// and its event-loop delay since the previous probe.
import { monitorEventLoopDelay } from 'node:perf_hooks';

export interface ProbeReply {
  /** CPU time of the process so far, µs (user + system). */
  cpu: number;
  /** Event-loop delay since the previous probe, ms. */
  lag: { p50: number; p99: number; max: number };
}

const RESOLUTION_MS = 10;
const delay = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
delay.enable();
/** The histogram holds whole timer intervals: the lag is what exceeds the interval. */
const lag = (ns: number) => Math.max(0, ns / 1e6 - RESOLUTION_MS);

process.on('message', (message) => {
  if (message !== 'probe') return;
  const { user, system } = process.cpuUsage();
  const reply: ProbeReply = {
    cpu: user + system,
    lag: {
      p50: lag(delay.percentile(50)),
      p99: lag(delay.percentile(99)),
      max: lag(delay.max),
    },
  };
  delay.reset();
  process.send?.(reply);
});
// The channel must not keep the worker alive: it leaves on SIGTERM as it would in production.
process.channel?.unref();
