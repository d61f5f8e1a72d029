import assert from 'node:assert/strict';
import { z } from 'zod';
import { createLogger } from '../../src/logger.js';
import { defineJob, JobTimeoutError, runJob } from '../../src/offload/index.js';

const base = {
  jobId: 'j',
  attempt: 1,
  log: createLogger('silent', 'test'),
  deps: {},
  progress: () => Promise.resolve(),
};

describe('runJob', () => {
  it('when a run outlasts timeoutMs, then its signal fires and the run fails with a timeout, late result discarded', async () => {
    let sawAbort = false;
    const slow = defineJob({
      name: 'slow',
      queue: 'test',
      input: z.object({}),
      timeoutMs: 50,
      run: (_input, ctx) =>
        new Promise<string>((resolve) => {
          ctx.signal.addEventListener('abort', () => {
            sawAbort = true;
            // Ignores the signal on purpose: the result must still be thrown away.
            setTimeout(() => resolve('too late'), 20);
          });
        }),
    });
    await assert.rejects(
      runJob(slow, {}, base),
      (e: unknown) => e instanceof JobTimeoutError && /50 ms/.test(e.message),
    );
    assert.ok(sawAbort);
  });

  it('when the outer signal aborts (cancel, shutdown), then the run stops with that reason', async () => {
    const forever = defineJob({
      name: 'forever',
      queue: 'test',
      input: z.object({}),
      run: () => new Promise<never>(() => undefined),
    });
    const controller = new AbortController();
    const running = runJob(forever, {}, { ...base, signal: controller.signal });
    controller.abort(new Error('cancelled by test'));
    await assert.rejects(running, /cancelled by test/);
  });

  it('when the input does not match, then run is never called', async () => {
    let called = false;
    const job = defineJob({
      name: 'strict',
      queue: 'test',
      input: z.object({ n: z.number() }),
      run: () => {
        called = true;
        return Promise.resolve();
      },
    });
    await assert.rejects(runJob(job, { n: 'one' }, base), /invalid input for job strict: n:/);
    assert.equal(called, false);
  });

  it('when a definition has a bad name, then defineJob refuses it', () => {
    assert.throws(
      () =>
        defineJob({
          name: 'Bad Name',
          queue: 'q',
          input: z.object({}),
          run: () => Promise.resolve(),
        }),
      /job name "Bad Name" must match/,
    );
  });
});
