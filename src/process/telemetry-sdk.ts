// The OpenTelemetry SDK, started by the preload (src/telemetry.ts) only when tracing is asked
// for. Everything it exports, samples and names comes from the standard OTEL_* variables, read
// by the SDK itself; this file picks the instrumentations and installs the app's hooks.
import {
  context,
  isSpanContextValid,
  propagation,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Context,
  type Span,
} from '@opentelemetry/api';
import { ExpressInstrumentation, ExpressLayerType } from '@opentelemetry/instrumentation-express';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { IORedisInstrumentation, type CommandArgs } from '@opentelemetry/instrumentation-ioredis';
import { UndiciInstrumentation } from '@opentelemetry/instrumentation-undici';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { BullMQOtel } from 'bullmq-otel';
import type { JobTracing, RunOutcome, TracedRun } from '../offload/index.js';
import { installTelemetry, type SpanAttributes } from './telemetry-hooks.js';

const NAME = 'offload';
/** Probes that poll all day long: a trace each would drown the real ones. */
const PROBES = new Set(['/healthz', '/readyz', '/metrics']);

export function startTelemetry({ serviceName }: { serviceName?: string | undefined }): void {
  const sdk = new NodeSDK({
    ...(serviceName && { serviceName }),
    instrumentations: [
      new HttpInstrumentation({
        ignoreIncomingRequestHook: (req) => PROBES.has((req.url ?? '').split('?')[0] ?? ''),
      }),
      // The route's name on the request span (POST /signup), and no span of its own for each
      // router, middleware and handler a request passes (a dozen, most 0 ms, all costing).
      new ExpressInstrumentation({ ignoreLayersType: Object.values(ExpressLayerType) }),
      // Only commands made inside a trace: a worker's idle polling starts none.
      new IORedisInstrumentation({
        requireParentSpan: true,
        dbStatementSerializer: redisStatement,
      }),
      // Outgoing fetch: the webhooks job.
      new UndiciInstrumentation(),
    ],
    // The app has its own metrics (GET /metrics) and logs (stdout, now with trace ids): OTel's
    // are exported only when their standard variables ask for them.
    ...(process.env.OTEL_METRICS_EXPORTER ? {} : { metricReaders: [] }),
    ...(process.env.OTEL_LOGS_EXPORTER ? {} : { logRecordProcessors: [] }),
  });
  sdk.start();

  const tracer = trace.getTracer(NAME);
  installTelemetry({
    jobs: jobTracing(),
    logFields,
    span: (name, attributes, fn) =>
      tracer.startActiveSpan(name, { kind: SpanKind.CLIENT, attributes }, (span) =>
        settle(span, fn),
      ),
    shutdown: () => sdk.shutdown(),
  });

  function jobTracing(): JobTracing {
    return {
      telemetry: new BullMQOtel({ tracerName: 'bullmq' }),
      run(run, fn, outcomeOf) {
        const enqueuer = parentOf(run.parent);
        // The wait in the queue, as time on the trace: from the enqueue (the add span, its
        // parent) to the first run. A retry's wait shows as the gap between its attempts.
        if (run.attempt === 1 && enqueuer) {
          tracer
            .startSpan(
              `wait ${run.queue}`,
              { startTime: run.enqueuedAt, attributes: waitAttributes(run) },
              enqueuer,
            )
            .end(run.startedAt);
        }
        return tracer.startActiveSpan(
          `run ${run.name}`,
          { attributes: runAttributes(run) },
          async (span) => {
            try {
              const value = await fn();
              report(span, outcomeOf({ ok: true, value }), run);
              return value;
            } catch (error) {
              report(span, outcomeOf({ ok: false, error }), run);
              throw error;
            } finally {
              span.end();
            }
          },
        );
      },
    };
  }
}

/**
 * A Redis span's statement (db.query.text; db.statement in the old conventions): the command's
 * name and the keys it touches, never its values. The default serializer writes out every
 * argument of an EVALSHA, which for BullMQ's scripts is the whole job (its msgpack'd data: an
 * email address, a name) stringified on every enqueue, then exported: personal data in the
 * traces, and a third of the bytes the http bench exports per span (530 → 352 bytes,
 * bench/http.ts `offload+tracing`; its throughput ratio moved within noise).
 */
function redisStatement(name: string, args: CommandArgs): string {
  const scripted = /^(EVAL|EVALSHA|FCALL)(_RO)?$/i.test(name);
  const keyCount = scripted ? Number(args[1]) : Math.min(args.length, 1);
  const from = scripted ? 2 : 0;
  const keys = args.slice(from, from + (Number.isInteger(keyCount) ? keyCount : 0));
  const named = keys.filter((key): key is string => typeof key === 'string');
  const rest = args.length - named.length;
  return [name, ...named, ...(rest > 0 ? [`[${String(rest)} other arguments]`] : [])].join(' ');
}

/** The enqueuer's context, from the metadata BullMQ stored with the job (JSON of W3C headers). */
function parentOf(metadata: string | undefined): Context | undefined {
  if (!metadata) return undefined;
  try {
    const carrier = JSON.parse(metadata) as Record<string, string>;
    const parent = propagation.extract(ROOT_CONTEXT, carrier);
    return trace.getSpanContext(parent) ? parent : undefined;
  } catch {
    return undefined; // not ours to fail a job over
  }
}

const waitAttributes = (run: TracedRun): SpanAttributes => ({
  'messaging.destination.name': run.queue,
  'offload.job.id': run.jobId,
  'offload.job.name': run.name,
  // A countdown (delayMs, at) is part of the wait, by design rather than by load.
  'offload.job.delay_ms': run.readyAt - run.enqueuedAt,
});

const runAttributes = (run: TracedRun): SpanAttributes => ({
  'messaging.destination.name': run.queue,
  'offload.job.id': run.jobId,
  'offload.job.name': run.name,
  'offload.job.attempt': run.attempt,
  'offload.job.attempts': run.attempts,
  'offload.job.waited_ms': run.startedAt - run.enqueuedAt,
});

/** What became of a run, on its span: an attribute always, an error status when it failed. */
function report(span: Span, outcome: RunOutcome, run: TracedRun): void {
  span.setAttribute('offload.job.outcome', outcome.kind);
  switch (outcome.kind) {
    case 'completed':
      return;
    case 'deferred':
      span.addEvent('deferred', { reason: outcome.reason });
      return;
    case 'retrying':
      fail(span, outcome.error, `attempt ${run.attempt} of ${run.attempts} failed, will retry`);
      return;
    case 'dead-lettered':
      fail(span, outcome.error, 'failed for good: dead-lettered');
      return;
    case 'cancelled':
      span.setStatus({ code: SpanStatusCode.ERROR, message: 'cancelled' });
      return;
    case 'expired':
      span.setStatus({ code: SpanStatusCode.ERROR, message: outcome.reason });
      return;
  }
}

function fail(span: Span, error: unknown, what: string): void {
  const message = error instanceof Error ? error.message : String(error);
  if (error instanceof Error) span.recordException(error);
  span.setStatus({ code: SpanStatusCode.ERROR, message: `${what}: ${message}` });
}

async function settle<T>(span: Span, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    fail(span, error, 'failed');
    throw error;
  } finally {
    span.end();
  }
}

/** pino's mixin: the active span's ids on every line written inside it. (A new object each
 * time: pino merges the line's own fields into it.) */
function logFields(): Record<string, string> {
  const span = trace.getSpan(context.active());
  if (!span) return {};
  const ids = span.spanContext();
  if (!isSpanContextValid(ids)) return {};
  return { trace_id: ids.traceId, span_id: ids.spanId };
}
