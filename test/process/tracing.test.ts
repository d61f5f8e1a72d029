// OpenTelemetry across the Procfile's processes: web and worker run as child processes and
// export OTLP (http/json) to a receiver in this process, as they would to a collector.
import assert from 'node:assert/strict';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { eventually } from '../harness/app.js';
import { sharedRedisUrl } from '../harness/global.js';
import { startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from '../harness/otlp.js';
import { startReceiver, type Receiver } from '../harness/receiver.js';
import { startStack, type Stack } from '../harness/stack.js';

const SERVER = 2;
const PRODUCER = 4;
const CONSUMER = 5;
const ERROR = 2;

/** Records the npm packages each process loads (see the harness file). */
const PACKAGE_LOG = resolve('test/harness/loaded-packages.ts');
const packageLogging = (file: string) => ({
  NODE_OPTIONS: `--import ${PACKAGE_LOG}`,
  LOADED_PACKAGES_FILE: file,
});
/** `<package> <importer>` pairs, as the harness wrote them. */
const loadedPackages = async (file: string) =>
  (await readFile(file, 'utf8'))
    .split('\n')
    .filter(Boolean)
    .map((line) => line.split(' ') as [string, string]);
const OTEL = /^(@opentelemetry\/|bullmq-otel$|import-in-the-middle$|require-in-the-middle$)/;

async function post(base: string, path: string, body: unknown) {
  const res = await fetch(`${base}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  assert.equal(res.status, 202, `POST ${path}`);
  return (await res.json()) as { id: string; statusUrl: string };
}

describe('tracing: one trace from request to job, across the web and worker processes', function () {
  this.timeout(60_000);
  let otlp: OtlpReceiver;
  let webhooks: Receiver;
  let stack: Stack;
  let dir: string;

  /** The spans of one trace, and ways to walk them. */
  const traceOf = (span: ReceivedSpan) => {
    const spans = otlp.spans.filter((s) => s.traceId === span.traceId);
    const byId = new Map(spans.map((s) => [s.spanId, s]));
    return {
      spans,
      parentOf: (s: ReceivedSpan) => byId.get(s.parentSpanId),
      /** The span's ancestors, nearest first, as far as the received spans reach. */
      ancestors(s: ReceivedSpan) {
        const chain: ReceivedSpan[] = [];
        for (let p = byId.get(s.parentSpanId); p; p = byId.get(p.parentSpanId)) chain.push(p);
        return chain;
      },
    };
  };
  const span = (match: (s: ReceivedSpan) => boolean, what: string) => otlp.waitForSpan(match, what);
  const runOf = (jobId: string, attempt = 1) =>
    span(
      (s) =>
        s.name.startsWith('run ') &&
        s.attributes['offload.job.id'] === jobId &&
        s.attributes['offload.job.attempt'] === attempt,
      `the run span of job ${jobId}, attempt ${attempt}`,
    );

  before(async () => {
    otlp = await startOtlpReceiver();
    webhooks = await startReceiver();
    dir = await mkdtemp(join(tmpdir(), 'offload-tracing-'));
    stack = await startStack(sharedRedisUrl(), {
      OTEL_EXPORTER_OTLP_ENDPOINT: otlp.endpoint,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      // Export within a tenth of a second, so waits are short.
      OTEL_BSP_SCHEDULE_DELAY: '100',
      WEBHOOK_ALLOW_PRIVATE: 'true', // the webhook receiver is on loopback
      REPORT_CHUNK_SIZE: '1',
    });
    await stack.startWeb(packageLogging(join(dir, 'web-packages')));
    await stack.startWorker(packageLogging(join(dir, 'worker-packages')));
  });

  after(async () => {
    await stack.close();
    await Promise.all([otlp.close(), webhooks.close()]);
  });

  it('when a visitor signs up, then one trace runs from POST /signup through the enqueue, the wait in the queue and the run to the SMTP send', async () => {
    const { id } = await post(stack.base, '/signup', { email: 'ada@example.com', name: 'Ada' });
    const send = await span(
      (s) => s.name === 'mail send' && s.attributes['mail.via'] === 'smtp',
      'the SMTP send',
    );
    const run = await runOf(id);
    const wait = await span((s) => s.name === 'wait mail', 'the wait in the mail queue');
    const trace = traceOf(run);
    const request = trace.spans.find((s) => s.name === 'POST /signup' && s.kind === SERVER);
    assert.ok(request, 'POST /signup is in the same trace');
    assert.equal(request.service, 'offload-web');
    assert.equal(request.parentSpanId, '', 'the request is the root');

    // web: the request → its handler → the enqueue (BullMQ's producer span).
    const add = trace.spans.find((s) => s.kind === PRODUCER && s.name.startsWith('add mail'));
    assert.ok(add, 'the enqueue is a producer span in the trace');
    assert.ok(trace.ancestors(add).includes(request), 'the enqueue hangs under the request');
    // worker: the wait and BullMQ's consumer span are the enqueue's children.
    assert.equal(wait.traceId, run.traceId);
    assert.equal(wait.parentSpanId, add.spanId);
    assert.equal(wait.service, 'offload-worker');
    assert.ok(wait.startMs <= wait.endMs && wait.startMs >= add.startMs - 1, 'the wait is time');
    const consumer = trace.parentOf(run);
    assert.equal(consumer?.kind, CONSUMER);
    assert.equal(consumer.parentSpanId, add.spanId);
    // The run, then the send inside it.
    assert.equal(run.attributes['offload.job.outcome'], 'completed');
    assert.equal(run.attributes['offload.job.name'], 'send-email');
    assert.equal(send.traceId, run.traceId);
    assert.equal(send.parentSpanId, run.spanId);
  });

  it("when a job is enqueued, then the Redis spans name the command and its keys, never the job data, and BullMQ's own commands make none", async () => {
    const email = 'cy.private@example.com';
    const { id } = await post(stack.base, '/signup', { email, name: 'Cy' });
    const trace = traceOf(await runOf(id));
    await span((s) => s.traceId === trace.spans[0]?.traceId && s.name === 'mail send', 'the send');
    const redis = otlp.spans.filter(
      (s) =>
        s.traceId === trace.spans[0]?.traceId &&
        typeof (s.attributes['db.query.text'] ?? s.attributes['db.statement']) === 'string',
    );
    const statements = redis.map((s) =>
      String(s.attributes['db.query.text'] ?? s.attributes['db.statement']),
    );
    assert.ok(statements.length > 0, 'the job made Redis spans in the trace');
    for (const statement of statements) {
      assert.ok(!statement.includes('cy.private'), `no job data in ${statement}`);
    }
    // The runner's own script on the job's key, inside the run: keys named, arguments counted.
    assert.ok(
      statements.some((statement) => new RegExp(`^evalsha \\S+:mail:${id} `, 'i').test(statement)),
      `a script names its keys: ${statements.join(' | ')}`,
    );
    // A command BullMQ sends inside its own span (the add script, the completion) is that span:
    // no Redis span of its own (src/process/telemetry-sdk.ts quietUnder).
    const all = traceOf(redis[0]!);
    for (const command of redis) {
      const parent = all.parentOf(command);
      assert.ok(parent, `the parent of ${command.name} was received`);
      assert.ok(
        !/^(add|process|complete) /.test(parent.name),
        `${command.name} has no span under BullMQ's ${parent.name}`,
      );
    }
  });

  it('when the worker logs inside a job, then the line carries the trace and the span it was written in, next to the request id', async () => {
    const { id } = await post(stack.base, '/signup', { email: 'bo@example.com', name: 'Bo' });
    const run = await runOf(id);
    const worker = stack.workers[0]!;
    const line = await worker.waitForLog((l) => l.msg === 'job completed' && l.jobId === id);
    assert.equal(line.trace_id, run.traceId);
    assert.equal(line.span_id, run.spanId);
    assert.equal(typeof line.reqId, 'string');
    // The web's log line of the same request carries the same trace.
    const request = await stack.web!.waitForLog(
      (l) => l.reqId === line.reqId && l.trace_id !== undefined,
    );
    assert.equal(request.trace_id, run.traceId);
  });

  it('when a webhook fails once and then answers, then each attempt is a run span of its own in the request trace, numbered, the first saying it will retry', async () => {
    webhooks.script('/flaky', [{ status: 500 }, { status: 204 }]);
    const { id } = await post(stack.base, '/webhooks', {
      url: webhooks.url('/flaky'),
      event: 'order.paid',
      payload: { order: 1 },
    });
    const [first, second] = await Promise.all([runOf(id, 1), runOf(id, 2)]);
    assert.equal(first.traceId, second.traceId);
    assert.equal(first.status.code, ERROR);
    assert.match(first.status.message, /attempt 1 of 5 failed, will retry: .*HTTP 500/);
    assert.equal(first.attributes['offload.job.outcome'], 'retrying');
    assert.equal(second.attributes['offload.job.outcome'], 'completed');
    assert.ok(second.startMs >= first.endMs, 'the retry comes after the first attempt');
    const trace = traceOf(second);
    const request = trace.spans.find((s) => s.name === 'POST /webhooks');
    assert.ok(request, 'both attempts are in the request trace');
    for (const attempt of [first, second]) {
      assert.ok(trace.ancestors(attempt).includes(request));
    }
    // The call itself (fetch) is a client span inside each attempt, and the receiver got the
    // trace context with it.
    const calls = trace.spans.filter((s) => s.kind === 3 && s.name.startsWith('POST'));
    assert.deepEqual(calls.map((c) => c.parentSpanId).sort(), [first.spanId, second.spanId].sort());
    const [headers] = webhooks.received('/flaky').map((r) => r.headers);
    assert.match(String(headers?.traceparent), new RegExp(`^00-${first.traceId}-`));
  });

  it('when a report is made, then its chunks, its zip step and the mail it enqueues all hang under POST /reports', async () => {
    const { id } = await post(stack.base, '/reports', { email: 'cy@example.com', sample: 2 });
    const zip = await runOf(id);
    assert.equal(zip.attributes['offload.job.name'], 'zip-report');
    const mailRun = await span(
      (s) =>
        s.traceId === zip.traceId &&
        s.name === 'run send-email' &&
        s.attributes['offload.job.outcome'] === 'completed',
      'the report mail, in the report trace',
    );
    await span((s) => s.traceId === zip.traceId && s.name === 'mail send', 'its SMTP send');
    const trace = traceOf(zip);
    const request = trace.spans.find((s) => s.name === 'POST /reports' && s.kind === SERVER);
    assert.ok(request, 'the zip step is in the request trace');
    const chunks = trace.spans.filter((s) => s.name === 'run render-cards');
    assert.equal(chunks.length, 2, 'two chunks of one card each');
    for (const step of [...chunks, zip, mailRun]) {
      assert.ok(
        trace.ancestors(step).includes(request),
        `${step.name} ${String(step.attributes['offload.job.id'])} hangs under the request`,
      );
    }
    // The follow-up mail was enqueued by the zip step's run: it hangs under that run.
    assert.ok(trace.ancestors(mailRun).includes(zip), 'the mail hangs under the zip step');
  });

  it('when a running job is cancelled, then its run span says cancelled', async () => {
    webhooks.script('/hang', ['hang']);
    const { id, statusUrl } = await post(stack.base, '/webhooks', {
      url: webhooks.url('/hang'),
      event: 'order.paid',
      payload: {},
    });
    await webhooks.waitFor('/hang', 1); // the worker is inside the call
    const cancel = await fetch(`${stack.base}${statusUrl}`, { method: 'DELETE' });
    assert.equal(cancel.status, 200);
    const run = await runOf(id);
    assert.equal(run.status.code, ERROR);
    assert.equal(run.status.message, 'cancelled');
    assert.equal(run.attributes['offload.job.outcome'], 'cancelled');
  });

  it('when a job fails for good, then its run span says it was dead-lettered', async () => {
    webhooks.script('/gone', [{ status: 410 }]); // a 4xx: permanent, no retry
    const { id } = await post(stack.base, '/webhooks', {
      url: webhooks.url('/gone'),
      event: 'order.paid',
      payload: {},
    });
    const run = await runOf(id);
    assert.equal(run.status.code, ERROR);
    assert.match(run.status.message, /^failed for good: dead-lettered: .*HTTP 410/);
    assert.equal(run.attributes['offload.job.outcome'], 'dead-lettered');
  });

  it('when tracing is on, then both processes load the SDK (what the next test checks is absent)', async () => {
    for (const process of ['web', 'worker']) {
      const names = new Set(
        (await loadedPackages(join(dir, `${process}-packages`))).map(([n]) => n),
      );
      for (const name of ['@opentelemetry/sdk-node', 'bullmq-otel', 'import-in-the-middle']) {
        assert.ok(names.has(name), `${process} loaded ${name}`);
      }
    }
  });
});

describe('tracing unset: nothing of OpenTelemetry is loaded', function () {
  this.timeout(60_000);
  let stack: Stack;
  let dir: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'offload-untraced-'));
    stack = await startStack(sharedRedisUrl());
  });
  after(() => stack.close());

  it('when no OTEL_* variable asks for traces, then neither process loads an OpenTelemetry module (the API only as prom-client requires it)', async () => {
    await stack.startWeb(packageLogging(join(dir, 'web-packages')));
    await stack.startWorker(packageLogging(join(dir, 'worker-packages')));
    const { id } = await post(stack.base, '/signup', { email: 'di@example.com', name: 'Di' });
    await stack.allCompleted([id], 15_000);
    for (const process of ['web', 'worker']) {
      const loaded = await eventually(async () => {
        const pairs = await loadedPackages(join(dir, `${process}-packages`));
        return pairs.length > 0 ? pairs : undefined;
      });
      const names = new Set(loaded.map(([name]) => name));
      assert.ok(names.has('bullmq') && names.has('ioredis'), `${process}: the record works`);
      // prom-client (the /metrics the app had before tracing) requires @opentelemetry/api for
      // its exemplars: a no-op without an SDK, and none of our code asks for it.
      const otel = loaded.filter(
        ([name, by]) =>
          OTEL.test(name) &&
          !(name === '@opentelemetry/api' && /^(prom-client|@opentelemetry\/api)$/.test(by)),
      );
      assert.deepEqual(otel, [], `${process} loaded OpenTelemetry modules`);
    }
  });
});
