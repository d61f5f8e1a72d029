// Where tracing, when on, hands its hooks to the app: the offloader's JobTracing, the log
// fields, a span around a call. The preload (src/telemetry.ts) fills the slot before the app's
// first line runs; the app reads it. No OpenTelemetry import here: with tracing off the slot
// stays empty and the app never loads, nor pays for, any of it.
import type { JobTracing } from '../offload/index.js';

export type SpanAttributes = Record<string, string | number | boolean>;

export interface Telemetry {
  /** The offloader's spans: enqueue, the wait in the queue, each run (see offload/tracing.ts). */
  jobs: JobTracing;
  /** `trace_id` and `span_id` of the active span, for each log line (pino's mixin). */
  logFields: () => Record<string, string>;
  /** Runs `fn` in a client span of its own (a call to another system: an SMTP send). */
  span: <T>(name: string, attributes: SpanAttributes, fn: () => Promise<T>) => Promise<T>;
  /** Exports what is buffered and stops (the last shutdown step). */
  shutdown(): Promise<void>;
}

let installed: Telemetry | undefined;

/** Called once, by the preload, when tracing is on. */
export function installTelemetry(telemetry: Telemetry): void {
  installed = telemetry;
}

/** The tracing hooks, or undefined when tracing is off. */
export function telemetry(): Telemetry | undefined {
  return installed;
}

/** The shutdown step of both processes: the spans still buffered go out before exit. */
export async function flushTelemetry(): Promise<void> {
  await installed?.shutdown();
}
