// A small OTLP/HTTP receiver: what a collector is to the app's processes. It takes
// ExportTraceServiceRequests as JSON (OTEL_EXPORTER_OTLP_PROTOCOL=http/json) on /v1/traces,
// answers 200 to every other signal, and keeps the spans, flattened, with their service name.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Watched } from './watched.js';

export type AttributeValue = string | number | boolean;

export interface ReceivedSpan {
  service: string;
  traceId: string;
  spanId: string;
  /** Empty for a trace's root. */
  parentSpanId: string;
  name: string;
  /** OTLP's SpanKind: 1 internal, 2 server, 3 client, 4 producer, 5 consumer. */
  kind: number;
  startMs: number;
  endMs: number;
  attributes: Record<string, AttributeValue>;
  /** OTLP's StatusCode: 0 unset, 1 ok, 2 error. */
  status: { code: number; message: string };
}

export interface OtlpReceiver {
  /** For OTEL_EXPORTER_OTLP_ENDPOINT: the SDK appends /v1/traces. */
  endpoint: string;
  spans: ReceivedSpan[];
  /** Resolves with the first span, past or future, that `match` accepts. */
  waitForSpan(
    match: (span: ReceivedSpan) => boolean,
    what: string,
    timeoutMs?: number,
  ): Promise<ReceivedSpan>;
  close(): Promise<void>;
}

/** The JSON shapes the SDK's OTLP/HTTP JSON exporter sends (ids in hex, times in ns strings). */
interface KeyValue {
  key: string;
  value: {
    stringValue?: string;
    intValue?: string | number;
    doubleValue?: number;
    boolValue?: boolean;
  };
}
interface JsonSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind?: number;
  startTimeUnixNano: string | number;
  endTimeUnixNano: string | number;
  attributes?: KeyValue[];
  status?: { code?: number; message?: string };
}
interface ExportTraceServiceRequest {
  resourceSpans?: {
    resource?: { attributes?: KeyValue[] };
    scopeSpans?: { spans?: JsonSpan[] }[];
  }[];
}

const valueOf = ({ value }: KeyValue): AttributeValue =>
  value.stringValue ??
  value.boolValue ??
  value.doubleValue ??
  (value.intValue === undefined ? '' : Number(value.intValue));

const attributesOf = (list: KeyValue[] = []) =>
  Object.fromEntries(list.map((kv) => [kv.key, valueOf(kv)]));

const ms = (ns: string | number) => Number(BigInt(ns) / 1_000_000n);

export function flatten(request: ExportTraceServiceRequest): ReceivedSpan[] {
  return (request.resourceSpans ?? []).flatMap((resourceSpans) => {
    const service = String(attributesOf(resourceSpans.resource?.attributes)['service.name']);
    return (resourceSpans.scopeSpans ?? []).flatMap((scope) =>
      (scope.spans ?? []).map((span) => ({
        service,
        traceId: span.traceId,
        spanId: span.spanId,
        parentSpanId: span.parentSpanId ?? '',
        name: span.name,
        kind: span.kind ?? 0,
        startMs: ms(span.startTimeUnixNano),
        endMs: ms(span.endTimeUnixNano),
        attributes: attributesOf(span.attributes),
        status: { code: span.status?.code ?? 0, message: span.status?.message ?? '' },
      })),
    );
  });
}

export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const spans = new Watched<ReceivedSpan>();
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      if (req.url === '/v1/traces' && req.headers['content-type']?.includes('json')) {
        const body = JSON.parse(
          Buffer.concat(chunks).toString('utf8'),
        ) as ExportTraceServiceRequest;
        for (const span of flatten(body)) spans.push(span);
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    spans: spans.items,
    waitForSpan: (match, what, timeoutMs = 15_000) =>
      spans.waitFor(match, {
        timeoutMs,
        describe: () =>
          `no span: ${what}; received ${spans.items.length}: ${spans.items
            .map((s) => `${s.service}/${s.name}`)
            .join(', ')}`,
      }),
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
