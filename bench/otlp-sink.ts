// An OTLP/HTTP sink for the "+ tracing" variants: takes every export (http/protobuf, the SDK's
// default) and counts its spans, nothing more, so a traced process pays its full exporting cost
// while the sink, which shares the machine, pays as little as it can (it walks the protobuf
// framing to count spans, and decodes nothing else).
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface OtlpSink {
  endpoint: string;
  /** Spans received so far. */
  spans(): number;
  close(): Promise<void>;
}

/**
 * Calls `each` with the bounds of every length-delimited field numbered `wanted` in
 * `buf[start, end)`, skipping the others (protobuf wire format: a varint key, then the value).
 */
function fieldsOf(
  buf: Buffer,
  start: number,
  end: number,
  wanted: number,
  each: (from: number, to: number) => void,
): void {
  let at = start;
  const varint = () => {
    let value = 0;
    for (let shift = 0; ; shift += 7) {
      const byte = buf[at++] ?? 0;
      value += (byte & 0x7f) * 2 ** shift;
      if (byte < 0x80) return value;
    }
  };
  while (at < end) {
    const key = varint();
    const wire = key & 7;
    if (wire === 0) varint();
    else if (wire === 1) at += 8;
    else if (wire === 5) at += 4;
    else if (wire === 2) {
      const length = varint();
      if (key >>> 3 === wanted) each(at, at + length);
      at += length;
    } else throw new Error(`unexpected protobuf wire type ${wire}`);
  }
}

/** ExportTraceServiceRequest: resource_spans (1) → scope_spans (2) → spans (2). */
function countSpans(body: Buffer): number {
  let spans = 0;
  fieldsOf(body, 0, body.length, 1, (from, to) => {
    fieldsOf(body, from, to, 2, (scopeFrom, scopeTo) => {
      fieldsOf(body, scopeFrom, scopeTo, 2, () => spans++);
    });
  });
  return spans;
}

export async function startOtlpSink(): Promise<OtlpSink> {
  let spans = 0;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      if (req.url === '/v1/traces') spans += countSpans(Buffer.concat(chunks));
      // An empty ExportTraceServiceResponse: all accepted.
      res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    spans: () => spans,
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** The environment that turns tracing on, exporting every span to `sink` (bench/README.md). */
export const tracingEnv = (sink: OtlpSink, service: string): Record<string, string> => ({
  OTEL_EXPORTER_OTLP_ENDPOINT: sink.endpoint,
  OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
  OTEL_SERVICE_NAME: service,
  OTEL_TRACES_SAMPLER: 'always_on',
  // Big enough that no span is dropped under load: every span is exported.
  OTEL_BSP_MAX_QUEUE_SIZE: '262144',
  OTEL_BSP_SCHEDULE_DELAY: '200',
});
