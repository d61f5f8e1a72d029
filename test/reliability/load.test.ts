// Issue #8, item 9: 200 concurrent clients post signups for 20 s against the real `web` and
// `worker` processes. Mail goes to the outbox (one `<job id>.eml` per job, written by the
// worker), so the effect of every accepted job is counted outside the test process, which is
// busy being 200 clients.
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import autocannon from 'autocannon';
import { eventually } from '../harness/app.js';
import { sharedRedisUrl } from '../harness/global.js';
import { startProcess } from '../harness/procfile.js';
import { startStack, type Stack } from '../harness/stack.js';

const CLIENTS = 200;
const SECONDS = 20;
const DRAIN_MS = 60_000;

describe('reliability: load', function () {
  this.timeout(SECONDS * 1_000 + DRAIN_MS + 30_000);
  let stack: Stack;

  before(async () => {
    // Quiet processes: a log line per request or job would be most of the work.
    stack = await startStack(sharedRedisUrl(), {
      SMTP_URL: '',
      LOG_LEVEL: 'warn',
      WORKER_CONCURRENCY: '20',
    });
    await stack.startWeb();
    stack.workers.push(startProcess('worker', stack.env));
  });
  after(() => stack.close());

  it(`when ${CLIENTS} clients post signups for ${SECONDS} s, then there are no errors and every accepted job completes`, async () => {
    const accepted = new Set<string>();
    const statuses = new Map<number, number>();
    let backlog = 0;
    const sampler = setInterval(() => {
      void stack.counts(['mail']).then(
        (c) => (backlog = Math.max(backlog, (c.waiting ?? 0) + (c.active ?? 0))),
        () => undefined,
      );
    }, 1_000);
    const errors = new Map<string, number>();
    const result = await new Promise<autocannon.Result>((resolve, reject) => {
      const instance: autocannon.Instance = autocannon(
        {
          url: `${stack.base}/signup`,
          connections: CLIENTS,
          duration: SECONDS,
          // Slower than this is an error. A PaaS router gives up at 30 s; on a shared 2-core
          // test machine, 200 clients in this process can starve the server for seconds.
          timeout: 25,
          requests: [
            {
              method: 'POST',
              headers: { 'content-type': 'application/json' },
              body: JSON.stringify({ email: 'load@example.com', name: 'Lo Ad' }),
              onResponse: (status, body) => {
                statuses.set(status, (statuses.get(status) ?? 0) + 1);
                if (status === 202) accepted.add((JSON.parse(body) as { id: string }).id);
              },
            },
          ],
        },
        (error, done) => {
          if (error) reject(error instanceof Error ? error : new Error(String(error)));
          else resolve(done);
        },
      );
      instance.on('reqError', (error: Error & { code?: string }) => {
        const what = error.code ?? error.message;
        errors.set(what, (errors.get(what) ?? 0) + 1);
      });
    });
    clearInterval(sampler);
    const loadEnded = Date.now();
    const summary = `${result.requests.total} requests (${result.requests.average}/s, p99 ${result.latency.p99} ms), statuses ${JSON.stringify(Object.fromEntries(statuses))}, errors ${JSON.stringify(Object.fromEntries(errors))}`;
    assert.equal(result.errors, 0, `errors: ${summary}`);
    assert.equal(result.timeouts, 0, `timeouts: ${summary}`);
    assert.equal(result.non2xx, 0, `non-2xx: ${summary}`);
    assert.ok(accepted.size > 0);
    assert.equal(accepted.size, statuses.get(202), 'every 202 named its own job');

    // The effect of each job: its letter (BullMQ keeps only the newest completed jobs, so the
    // queue's completed count stops at its cap).
    const outbox = stack.env.OUTBOX_DIR!;
    const letters = async () =>
      new Set((await readdir(outbox).catch(() => [])).filter((name) => name.endsWith('.eml')));
    let written = new Set<string>();
    await eventually(
      async () => {
        await sleep(250); // a directory of thousands of files: not read 40 times a second
        written = await letters();
        const c = await stack.counts(['mail']);
        const idle = (c.waiting ?? 0) + (c.active ?? 0) + (c.delayed ?? 0) === 0;
        return idle && [...accepted].every((id) => written.has(`${id}.eml`)) ? true : undefined;
      },
      DRAIN_MS,
      `all ${accepted.size} accepted jobs completed`,
    ).catch((error: unknown) => {
      throw new Error(`${String(error)}: ${written.size} letters; ${summary}`);
    });
    const drainedMs = Date.now() - loadEnded;
    for (const id of accepted) assert.ok(written.has(`${id}.eml`), `no mail for job ${id}`);
    // Requests still in flight when the clients stopped were enqueued, but their 202 was never
    // read: at most one per client.
    const unread = written.size - accepted.size;
    assert.ok(unread <= CLIENTS, `${unread} letters of jobs no client saw accepted`);
    const mail = await stack.counts(['mail']);
    assert.deepEqual([mail.failed, mail.waiting, mail.active, mail.delayed], [0, 0, 0, 0]);
    assert.equal(stack.web!.child.exitCode, null);
    assert.equal(stack.workers[0]!.child.exitCode, null);
    console.log(
      `      ${summary}; ${accepted.size} accepted, all completed (and ${unread} whose 202 came after the clients stopped); most queued at once ${backlog}, drained ${drainedMs} ms after the load ended`,
    );
  });
});
