// Issue 18, item 6: a process that cannot reach Redis says so in plain words, with the host and
// port (never the password) and what it waits for, once per OUTAGE_LOG_EVERY_MS: not a line per
// retry from every queue on the connection (it was ~20 "queue error" lines a second).
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { freePort } from '../harness/ports.js';
import { startProcess, type LogLine } from '../harness/procfile.js';

describe('a process started while Redis is unreachable', function () {
  this.timeout(60_000);

  for (const type of ['worker', 'web'] as const) {
    it(`when the ${type} cannot connect, then it logs the host and port and what it waits for, once per period, never the password`, async () => {
      const port = await freePort(); // nothing listens there
      const proc = startProcess(type, {
        REDIS_URL: `redis://:hunter2-secret@127.0.0.1:${port}`,
        PORT: String(await freePort()),
        LOG_LEVEL: 'info',
        SHUTDOWN_TIMEOUT_MS: '2000', // nothing runs: no need to wait the default 25 s
      });
      try {
        const first = await proc.waitForLog((l) => /^redis connection error/.test(l.msg ?? ''));
        assert.match(
          first.msg ?? '',
          new RegExp(`Redis at 127\\.0\\.0\\.1:${port} refuses connections: is it running`),
        );
        assert.match(
          first.msg ?? '',
          type === 'web' ? /enqueues answer 503/ : /jobs wait in Redis/,
        );
        // A window of time is what a rate is counted over (ioredis retries every 0.1–2 s
        // meanwhile, and BullMQ's queues relay each failure).
        await delay(4_000);
      } finally {
        await proc.stop('SIGTERM');
      }
      const lines: LogLine[] = proc.lines;
      const aboutRedis = lines.filter((l) => /redis|queue error/i.test(l.msg ?? ''));
      // One line per connection at first (web has two: the producer and the event reader),
      // none more within OUTAGE_LOG_EVERY_MS (10 s).
      assert.ok(
        aboutRedis.length <= 3,
        `${aboutRedis.length} lines:\n${aboutRedis.map((l) => l.msg).join('\n')}`,
      );
      assert.ok(!lines.some((l) => l.msg === 'queue error' || l.msg === 'worker error'));
      assert.ok(!JSON.stringify(lines).includes('hunter2-secret'), 'the password is never logged');
    });
  }
});
