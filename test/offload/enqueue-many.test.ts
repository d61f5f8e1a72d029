import assert from 'node:assert/strict';
import { sendEmail } from '../../jobs/index.js';
import {
  InvalidEnqueueOptionsError,
  InvalidJobInputError,
  JOB_ID,
} from '../../src/offload/index.js';
import { createTestApp, eventually, type TestApp } from '../harness/app.js';
import { startSmtp, type TestSmtp } from '../harness/smtp.js';

const welcome = (n: number) => ({
  template: 'welcome' as const,
  to: `many-${n}@example.com`,
  name: `Reader ${n}`,
});

for (const mode of ['queue', 'inline'] as const) {
  describe(`offloader.enqueueMany (${mode} mode)`, () => {
    let smtp: TestSmtp;
    let t: TestApp;

    before(async () => {
      smtp = await startSmtp();
      t = await createTestApp({ OFFLOAD_MODE: mode, SMTP_URL: smtp.url });
    });
    after(async () => {
      await t.close();
      await smtp.close();
    });

    it('when 30 inputs are given, then 30 jobs are accepted in order, each with its own id, and every mail is delivered', async () => {
      const inputs = Array.from({ length: 30 }, (_, n) => welcome(n));
      const accepted = await t.offloader.enqueueMany(sendEmail, inputs);
      assert.equal(accepted.length, 30);
      assert.equal(new Set(accepted.map((a) => a.id)).size, 30);
      for (const a of accepted) {
        assert.match(a.id, JOB_ID);
        assert.equal(a.name, 'send-email');
        assert.equal(a.state, mode === 'queue' ? 'waiting' : 'completed');
      }
      if (mode === 'queue') {
        assert.equal(await t.countJobs(), 30, 'all 30 are in Redis before any worker runs');
        t.startWorkers();
      }
      // In order: the nth id is the nth input's job (its mail goes to that input's address).
      const last = await eventually(async () => {
        const status = await t.offloader.status(accepted[29]!.id);
        return status?.state === 'completed' ? status : undefined;
      });
      assert.equal(last.name, 'send-email');
      for (const [n] of inputs.entries()) {
        const mail = await smtp.waitFor((m) => m.to.includes(`many-${n}@example.com`));
        assert.equal(mail.mail.subject, `Welcome, Reader ${n}!`);
      }
    });

    it('when one input of many is bad, then none is enqueued and the error names it', async () => {
      const mails = smtp.received.length;
      const jobs = mode === 'queue' ? await t.countJobs() : 0;
      const inputs = [welcome(100), { ...welcome(101), to: 'not an address' }, welcome(102)];
      await assert.rejects(t.offloader.enqueueMany(sendEmail, inputs), (error: unknown) => {
        assert.ok(error instanceof InvalidJobInputError);
        assert.deepEqual(
          error.problems.map((p) => p.split(':')[0]),
          ['to'],
        );
        return true;
      });
      if (mode === 'queue') assert.equal(await t.countJobs(), jobs, 'nothing added to Redis');
      assert.equal(smtp.received.length, mails, 'no mail went out');
    });

    it('when a key or children are given, then the batch is refused: they fit one job, not many', async () => {
      for (const options of [{ key: 'k'.repeat(20) }, { children: [] }]) {
        await assert.rejects(
          // @ts-expect-error -- options enqueueMany does not take, as an untyped caller might pass them
          t.offloader.enqueueMany(sendEmail, [welcome(200)], options),
          InvalidEnqueueOptionsError,
        );
      }
    });

    it('when the list is empty, then nothing is added and the answer is empty', async () => {
      assert.deepEqual(await t.offloader.enqueueMany(sendEmail, []), []);
    });
  });
}
