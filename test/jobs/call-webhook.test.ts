import assert from 'node:assert/strict';
import { createHmac, randomUUID } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Job, Queue } from 'bullmq';
import { callWebhook } from '../../jobs/index.js';
import {
  isPublicAddress,
  privateHostProblem,
  RETRY_AFTER_DEFAULT_MS,
  webhookSigningKey,
} from '../../jobs/call-webhook.js';
import { loadConfig } from '../../src/config.js';
import { closeDeps, createDeps, type Deps } from '../../src/deps.js';
import { createLogger } from '../../src/logger.js';
import {
  backoffDelay,
  createQueueOffloader,
  createRegistry,
  JobCancelledError,
  PermanentError,
  RetryLaterError,
  startRunner,
  type JobContext,
  type JobStatus,
  type Offloader,
  type Runner,
} from '../../src/offload/index.js';
import { createProducerConnection, createWorkerConnection } from '../../src/redis/connections.js';
import { eventually } from '../harness/app.js';
import { sharedRedisUrl } from '../harness/global.js';
import { startReceiver, type Receiver, type Received } from '../harness/receiver.js';

const log = createLogger('silent', 'test');
const SECRET = 'a-test-signing-secret-of-at-least-32-characters';

/**
 * The real job with its real code and retry policy (attempts, backoff kind, jitter), only with
 * short delays, so a test waits milliseconds where production waits seconds.
 */
const fastWebhook: typeof callWebhook = {
  ...callWebhook,
  retry: { ...callWebhook.retry, delayMs: 20, maxDelayMs: 100 },
};

/** What a receiver does to check a request: its key is derived from SIGNING_SECRET (README). */
function signatureOf(body: string): string {
  const receiverKey = createHmac('sha256', SECRET)
    .update('offload webhook signing key')
    .digest('hex');
  return `sha256=${createHmac('sha256', receiverKey).update(body).digest('hex')}`;
}

async function makeDeps(env: Record<string, string> = {}): Promise<Deps> {
  const dir = await mkdtemp(join(tmpdir(), 'offload-webhook-'));
  return createDeps(
    loadConfig({
      SIGNING_SECRET: SECRET,
      OUTBOX_DIR: join(dir, 'outbox'),
      STORAGE_DIR: join(dir, 'storage'),
      ...env,
    }),
  );
}

function context(
  deps: Deps,
  jobId: string,
  signal = new AbortController().signal,
): JobContext<Deps> {
  return {
    jobId,
    attempt: 1,
    log,
    deps,
    signal,
    results: () => Promise.resolve([]),
    progress: () => Promise.resolve(),
    enqueue: () => Promise.reject(new Error('call-webhook enqueues nothing')),
  };
}

describe('call-webhook job', () => {
  let receiver: Receiver;
  before(async () => {
    receiver = await startReceiver();
  });
  after(() => receiver.close());

  describe('called directly, as a plain function', () => {
    let deps: Deps;
    before(async () => {
      deps = await makeDeps({ WEBHOOK_ALLOW_PRIVATE: 'true' });
    });
    after(() => closeDeps(deps));

    const run = (path: string, jobId: string = randomUUID(), signal?: AbortSignal) =>
      callWebhook.run(
        callWebhook.input.parse({
          url: receiver.url(path),
          event: 'order.paid',
          payload: { n: 1 },
        }),
        context(deps, jobId, signal),
      );

    it('when the receiver answers 2xx, then it returns {status, ms}, having POSTed a signed JSON body keyed by the job id', async () => {
      receiver.script('/direct-ok', [{ status: 204 }]);
      const result = await run('/direct-ok', 'job-direct-1');
      assert.equal(result.status, 204);
      assert.ok(Number.isInteger(result.ms) && result.ms >= 0);
      const [request, ...more] = receiver.received('/direct-ok');
      assert.ok(request);
      assert.equal(more.length, 0);
      assert.equal(request.headers['content-type'], 'application/json');
      assert.equal(request.headers['idempotency-key'], 'job-direct-1');
      assert.equal(request.headers['x-offload-event'], 'order.paid');
      assert.equal(request.headers['x-offload-signature'], signatureOf(request.body));
      assert.deepEqual(JSON.parse(request.body), {
        id: 'job-direct-1',
        event: 'order.paid',
        payload: { n: 1 },
      });
      assert.equal(webhookSigningKey(SECRET).length, 64);
      assert.notEqual(webhookSigningKey(SECRET), SECRET, 'receivers never hold SIGNING_SECRET');
    });

    const inAnHour = () => new Date(Date.now() + 2 * 3_600_000).toUTCString();
    const cases: {
      answer: { status: number; headers?: Record<string, string> };
      outcome: string;
      check: (error: unknown) => boolean;
    }[] = [
      { answer: { status: 400 }, outcome: 'permanent', check: (e) => e instanceof PermanentError },
      { answer: { status: 404 }, outcome: 'permanent', check: (e) => e instanceof PermanentError },
      {
        answer: { status: 302, headers: { Location: '/direct-ok' } },
        outcome: 'permanent (redirects are not followed)',
        check: (e) => e instanceof PermanentError && /redirect/.test(e.message),
      },
      { answer: { status: 408 }, outcome: 'retried', check: (e) => retried(e, 408) },
      { answer: { status: 500 }, outcome: 'retried', check: (e) => retried(e, 500) },
      { answer: { status: 503 }, outcome: 'retried', check: (e) => retried(e, 503) },
      {
        answer: { status: 503, headers: { 'Retry-After': '120' } },
        outcome: 'retry later, this job',
        check: (e) => later(e, 'job', (ms) => ms === 120_000),
      },
      {
        answer: { status: 429 },
        outcome: 'retry later, whole queue, default delay',
        check: (e) => later(e, 'queue', (ms) => ms === RETRY_AFTER_DEFAULT_MS),
      },
      {
        answer: { status: 429, headers: { 'Retry-After': '86400' } },
        outcome: 'retry later, capped at an hour',
        check: (e) => later(e, 'queue', (ms) => ms === 3_600_000),
      },
      {
        answer: { status: 429, headers: { 'Retry-After': inAnHour() } },
        outcome: 'retry later, an HTTP date capped at an hour',
        check: (e) => later(e, 'queue', (ms) => ms === 3_600_000),
      },
      {
        answer: { status: 429, headers: { 'Retry-After': 'Thu, 01 Jan 1970 00:00:00 GMT' } },
        outcome: 'retry later, a past date floored at a second',
        check: (e) => later(e, 'queue', (ms) => ms === 1_000),
      },
    ];
    const retried = (e: unknown, status: number) =>
      e instanceof Error &&
      !(e instanceof PermanentError) &&
      !(e instanceof RetryLaterError) &&
      e.message === `webhook answered HTTP ${status}`;
    const later = (e: unknown, scope: string, delay: (ms: number) => boolean) =>
      e instanceof RetryLaterError && e.scope === scope && delay(e.delayMs);

    for (const [i, { answer, outcome, check }] of cases.entries()) {
      const retryAfter = answer.headers?.['Retry-After'];
      it(`when the receiver answers ${answer.status}${retryAfter ? ` with Retry-After ${retryAfter}` : ''}, then it throws: ${outcome}`, async () => {
        const path = `/direct-case-${i}`;
        receiver.script(path, [answer]);
        await assert.rejects(run(path), (error) => {
          assert.ok(check(error), `unexpected ${String(error)}`);
          return true;
        });
        assert.equal(receiver.received(path).length, 1);
      });
    }
    it('the redirect above was not followed', () => {
      // /direct-ok got exactly its own one request (first test), none from the 302's Location.
      assert.equal(receiver.received('/direct-ok').length, 1);
    });

    it('when the connection is reset, then it throws a plain (retried) error naming the cause', async () => {
      receiver.script('/direct-reset', ['reset']);
      await assert.rejects(run('/direct-reset'), (error: Error) => {
        assert.ok(!(error instanceof PermanentError) && !(error instanceof RetryLaterError));
        assert.match(error.message, /^webhook request failed: (ECONNRESET|UND_ERR_SOCKET)/);
        return true;
      });
    });

    it('when the receiver hangs past the request timeout, then it throws a plain timeout error', async () => {
      receiver.script('/direct-hang', ['hang']);
      const input = callWebhook.input.parse({
        url: receiver.url('/direct-hang'),
        event: 'e',
        payload: null,
        timeoutMs: 200,
      });
      const started = Date.now();
      await assert.rejects(callWebhook.run(input, context(deps, 'job-hang')), (error: Error) => {
        assert.ok(!(error instanceof PermanentError) && !(error instanceof RetryLaterError));
        assert.equal(error.message, 'webhook timed out after 200 ms');
        return true;
      });
      assert.ok(Date.now() - started >= 190);
      await eventually(() => receiver.received('/direct-hang')[0]?.abandoned || undefined);
    });

    it("when the job's own signal fires mid-request (cancel), then it throws the signal's reason", async () => {
      receiver.script('/direct-cancel', ['hang']);
      const controller = new AbortController();
      const running = run('/direct-cancel', 'job-cancel', controller.signal);
      await receiver.waitFor('/direct-cancel', 1);
      controller.abort(new JobCancelledError());
      await assert.rejects(running, JobCancelledError);
    });
  });

  describe('the SSRF guard (WEBHOOK_ALLOW_PRIVATE unset)', () => {
    let deps: Deps;
    before(async () => {
      deps = await makeDeps();
    });
    after(() => closeDeps(deps));

    it('when the URL names a loopback address or localhost, then it fails permanently without a request', async () => {
      receiver.script('/ssrf', [{ status: 200 }]);
      const port = new URL(receiver.url('/')).port;
      for (const url of [
        receiver.url('/ssrf'),
        `http://localhost:${port}/ssrf`,
        `http://[::ffff:127.0.0.1]:${port}/ssrf`,
        `http://2130706433:${port}/ssrf`,
      ]) {
        const input = callWebhook.input.parse({ url, event: 'e', payload: {} });
        await assert.rejects(
          callWebhook.run(input, context(deps, randomUUID())),
          (e) => e instanceof PermanentError && /WEBHOOK_ALLOW_PRIVATE/.test(e.message),
          url,
        );
      }
      assert.equal(receiver.received('/ssrf').length, 0);
    });

    it('when an address is private, link-local or loopback (either family), then it is not public', () => {
      for (const address of [
        '10.1.2.3',
        '127.0.0.1',
        '169.254.169.254',
        '172.31.0.1',
        '192.168.1.1',
        '100.64.0.1',
        '0.0.0.0',
        '255.255.255.255',
        '::1',
        '::',
        'fd00::1',
        'fe80::1',
        '::ffff:10.0.0.1',
        'not-an-address',
      ]) {
        assert.equal(isPublicAddress(address), false, address);
      }
      for (const address of ['8.8.8.8', '93.184.216.34', '2606:4700:4700::1111']) {
        assert.equal(isPublicAddress(address), true, address);
      }
      assert.ok(privateHostProblem(new URL('http://[::1]/')));
      assert.ok(privateHostProblem(new URL('http://0x7f.1/')));
      assert.ok(privateHostProblem(new URL('http://api.localhost./')));
      assert.equal(privateHostProblem(new URL('https://hooks.example.com/x')), undefined);
    });
  });

  describe('through a queue and workers (real Redis)', () => {
    const url = () => sharedRedisUrl();
    const prefix = `wh${randomUUID().slice(0, 8)}`;
    const registry = createRegistry([fastWebhook]);
    let deps: Deps;
    let offloader: Offloader;
    let inspector: Queue;
    const closers: (() => Promise<unknown>)[] = [];

    before(async () => {
      deps = await makeDeps({ WEBHOOK_ALLOW_PRIVATE: 'true' });
      const connection = createProducerConnection(url(), log);
      await new Promise((resolve) => connection.once('ready', resolve));
      offloader = createQueueOffloader({
        registry,
        connection,
        eventsConnection: () => createWorkerConnection(url(), log),
        prefix,
        log,
      });
      inspector = new Queue('webhooks', { connection: { url: url() }, prefix });
      closers.push(
        () => connection.quit(),
        () => offloader.close(),
        () => inspector.close(),
      );
      // Two workers, as two worker processes would be: the queue-wide pause must hold for both.
      for (let i = 0; i < 2; i += 1) {
        const workerConnection = createWorkerConnection(url(), log);
        const runner: Runner = startRunner({
          registry,
          queues: '*',
          connection: workerConnection,
          prefix,
          concurrency: { default: 2 },
          lockMs: 10_000,
          stalledIntervalMs: 10_000,
          deps,
          log,
        });
        closers.unshift(
          () => runner.close(Date.now() + 2_000),
          () => workerConnection.quit(),
        );
      }
    });
    after(async () => {
      for (const close of closers) await close();
      await closeDeps(deps);
    });

    const enqueue = async (path: string, extra: { timeoutMs?: number } = {}) =>
      (
        await offloader.enqueue(fastWebhook, {
          url: receiver.url(path),
          event: 'invoice.created',
          payload: { invoice: path },
          ...extra,
        })
      ).id;
    const final = (id: string, timeoutMs = 20_000) =>
      eventually(
        async () => {
          const status = await offloader.status(id);
          return status && ['completed', 'failed'].includes(status.state) ? status : undefined;
        },
        timeoutMs,
        `job ${id} finished`,
      );
    /** Every request carried the job id as Idempotency-Key, a valid signature and the same body. */
    const assertKeyedAndSigned = (requests: Received[], id: string) => {
      for (const request of requests) {
        assert.equal(request.headers['idempotency-key'], id);
        assert.equal(request.headers['x-offload-signature'], signatureOf(request.body));
        assert.equal(request.body, requests[0]?.body);
      }
    };
    const bullJob = async (id: string) => {
      const job = await Job.fromId(inspector, id);
      assert.ok(job, `job ${id} is in Redis`);
      return job;
    };

    it('the test policy differs from the real one in its delays only', () => {
      const real = callWebhook.retry;
      assert.deepEqual(
        { ...fastWebhook.retry, delayMs: real.delayMs, maxDelayMs: real.maxDelayMs },
        real,
      );
      assert.equal(fastWebhook.input, callWebhook.input);
      assert.equal(real.attempts, 5);
      // The real policy: 1 s, 2 s, 4 s, 8 s (less up to 20 % jitter), never above a minute.
      assert.equal(
        backoffDelay(callWebhook.retry, 4, () => 0),
        8_000,
      );
      assert.equal(
        backoffDelay(callWebhook.retry, 10, () => 0),
        60_000,
      );
    });

    it('when the receiver answers 500, 500, then 200, then it completes on attempt 3 after exactly 3 requests, each keyed by the job id and signed', async () => {
      receiver.script('/q-500-500-200', [{ status: 500 }, { status: 500 }, { status: 200 }]);
      const id = await enqueue('/q-500-500-200');
      const status: JobStatus = await final(id);
      assert.equal(status.state, 'completed', status.error);
      assert.equal(status.attempts, 3);
      const result = status.result as { status: number; ms: number };
      assert.equal(result.status, 200);
      assert.equal(typeof result.ms, 'number');
      assert.deepEqual(Object.keys(result).sort(), ['ms', 'status']);
      const requests = receiver.received('/q-500-500-200');
      assert.equal(requests.length, 3);
      assertKeyedAndSigned(requests, id);
      assert.equal((await bullJob(id)).attemptsMade, 3);
    });

    it("when the receiver answers 500 every time, then it fails after the policy's 5 attempts and 5 requests", async () => {
      receiver.script('/q-500', [{ status: 500 }]);
      const id = await enqueue('/q-500');
      const status = await final(id);
      assert.equal(status.state, 'failed');
      assert.equal(status.error, 'webhook answered HTTP 500');
      assert.equal(status.attempts, 5);
      assert.equal(receiver.received('/q-500').length, 5);
    });

    it('when the receiver answers 400, then it fails at once: 1 attempt, 1 request', async () => {
      receiver.script('/q-400', [{ status: 400 }, { status: 200 }]);
      const id = await enqueue('/q-400');
      const status = await final(id);
      assert.equal(status.state, 'failed');
      assert.equal(status.error, 'webhook answered HTTP 400');
      assert.equal(status.attempts, 1);
      assert.equal((await bullJob(id)).attemptsMade, 1);
      assert.equal(receiver.received('/q-400').length, 1);
    });

    it('when the receiver hangs past the request timeout, then the request is abandoned and retried', async () => {
      receiver.script('/q-hang', ['hang', { status: 200 }]);
      const id = await enqueue('/q-hang', { timeoutMs: 300 });
      const status = await final(id);
      assert.equal(status.state, 'completed', status.error);
      assert.equal(status.attempts, 2);
      const [first, second, ...more] = receiver.received('/q-hang');
      assert.ok(first && second && more.length === 0);
      assert.ok(first.abandoned, 'the client gave up on the first request');
      assert.ok(second.at - first.at >= 300, `retried ${second.at - first.at} ms later`);
      assertKeyedAndSigned([first, second], id);
    });

    it('when the connection is reset, then it is retried and completes on attempt 2', async () => {
      receiver.script('/q-reset', ['reset', { status: 200 }]);
      const id = await enqueue('/q-reset');
      const status = await final(id);
      assert.equal(status.state, 'completed', status.error);
      assert.equal(status.attempts, 2);
      assert.equal(receiver.received('/q-reset').length, 2);
      assertKeyedAndSigned(receiver.received('/q-reset'), id);
    });

    it('when the receiver answers 429 with Retry-After, then the job is called again and completes, the 429 spending no attempt', async () => {
      let release = () => {};
      const held = new Promise<void>((resolve) => (release = resolve));
      receiver.script('/q-429', [
        { status: 429, headers: { 'Retry-After': '1' } },
        { status: 200, hold: held },
      ]);
      const id = await enqueue('/q-429');
      const [first, second] = await receiver.waitFor('/q-429', 2);
      assert.ok(first && second);
      // The second run is active (its answer is held): the 429 spent no attempt. (When the call
      // may come again is the next test's.)
      const during = await bullJob(id);
      assert.equal(during.attemptsMade, 0);
      assert.equal(during.attemptsStarted, 2);
      release();
      const status = await final(id);
      assert.equal(status.state, 'completed', status.error);
      assert.equal((await bullJob(id)).attemptsMade, 1);
      assertKeyedAndSigned([first, second], id);
    });

    it('when a 429 with Retry-After: 1 pauses the queue, then neither that job nor another is called again within the second, in any worker', async () => {
      receiver.script('/q-pause-a', [
        { status: 429, headers: { 'Retry-After': '1' } },
        { status: 200 },
      ]);
      receiver.script('/q-pause-b', [{ status: 200 }]);
      const a = await enqueue('/q-pause-a');
      // Wait for the 429 to be answered and the queue-wide limit to be in Redis: B comes after.
      await eventually(async () => {
        const answered = receiver.received('/q-pause-a')[0]?.answeredAt;
        return answered && (await inspector.getRateLimitTtl()) > 0 ? answered : undefined;
      });
      const limitedAt = receiver.received('/q-pause-a')[0]?.answeredAt ?? 0;
      const b = await enqueue('/q-pause-b');
      const [statusA, statusB] = await Promise.all([final(a), final(b)]);
      assert.equal(statusA.state, 'completed', statusA.error);
      assert.equal(statusB.state, 'completed', statusB.error);
      const [, againA] = receiver.received('/q-pause-a');
      const [requestB] = receiver.received('/q-pause-b');
      assert.ok(againA && requestB);
      assert.ok(
        againA.at - limitedAt >= 1_000,
        `job A called again ${againA.at - limitedAt} ms after its 429`,
      );
      // Two workers with a free slot each: only the queue-wide pause can hold B back.
      assert.ok(
        requestB.at - limitedAt >= 1_000,
        `job B called ${requestB.at - limitedAt} ms after the 429, within its Retry-After`,
      );
      assert.equal((await bullJob(b)).attemptsStarted, 1);
    });

    it('when the receiver answers 503 with an HTTP-date Retry-After, then this job alone waits until that date, without spending an attempt', async () => {
      // HTTP dates have whole seconds: the next second boundary at least 1.2 s away.
      const at = Math.ceil((Date.now() + 1_200) / 1_000) * 1_000;
      receiver.script('/q-503', [
        { status: 503, headers: { 'Retry-After': new Date(at).toUTCString() } },
        { status: 200 },
      ]);
      receiver.script('/q-503-other', [{ status: 200 }]);
      const id = await enqueue('/q-503');
      await receiver.waitFor('/q-503', 1);
      const other = await enqueue('/q-503-other');
      const [, second] = await receiver.waitFor('/q-503', 2);
      assert.ok(second);
      assert.ok(second.at >= at, `came again ${at - second.at} ms before the date`);
      const status = await final(id);
      assert.equal(status.state, 'completed', status.error);
      const job = await bullJob(id);
      assert.equal(job.attemptsStarted, 2);
      assert.equal(job.attemptsMade, 1, 'the 503 spent no attempt');
      // The rest of the queue did not wait.
      const [otherRequest] = await receiver.waitFor('/q-503-other', 1);
      assert.ok(otherRequest && otherRequest.at < at, 'another job ran before the date');
      assert.equal((await final(other)).state, 'completed');
    });
  });
});
