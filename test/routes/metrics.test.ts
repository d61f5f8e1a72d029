import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import request from 'supertest';
import { makeThumbnail } from '../../jobs/index.js';
import { createTestApp, eventually, type TestApp } from '../harness/app.js';
import { sample } from '../harness/prometheus.js';

describe('GET /metrics', function () {
  this.timeout(60_000);
  let t: TestApp;
  const scrape = async () => {
    const res = await request(t.app).get('/metrics').expect(200);
    assert.match(String(res.headers['content-type']), /^text\/plain; version=0\.0\.4/);
    return res.text;
  };

  beforeEach(async () => {
    t = await createTestApp();
    await t.monitor.metrics.ready;
  });
  afterEach(() => t.close());

  it('when scraped, then every documented metric family is there', async () => {
    const text = await scrape();
    for (const name of [
      'http_request_duration_seconds',
      'offload_jobs_completed_total',
      'offload_jobs_failed_total',
      'offload_jobs_dropped_total',
      'offload_job_run_seconds',
      'offload_job_wait_seconds',
      'offload_queue_jobs',
      'offload_queue_latency_seconds',
      'process_cpu_seconds_total',
    ]) {
      assert.match(text, new RegExp(`^# TYPE ${name} `, 'm'), name);
    }
    assert.equal(sample(text, 'offload_queue_latency_seconds', { queue: 'mail' }), 0);
    assert.equal(sample(text, 'offload_queue_jobs', { queue: 'mail', state: 'waiting' }), 0);
  });

  it('when a job waits with no worker, then queue latency grows; once it runs, the job metrics move and latency is 0 again', async () => {
    await request(t.app)
      .post('/signup')
      .send({ email: 'metrics@example.com', name: 'Metric' })
      .expect(202);
    // Latency is the age of the oldest waiting job: it climbs while nobody consumes the queue.
    const waited = await eventually(async () => {
      const latency = sample(await scrape(), 'offload_queue_latency_seconds', { queue: 'mail' });
      return latency !== undefined && latency >= 0.3 ? latency : undefined;
    });
    assert.ok(waited >= 0.3);
    const before = await scrape();
    assert.equal(sample(before, 'offload_queue_jobs', { queue: 'mail', state: 'waiting' }), 1);
    assert.equal(sample(before, 'offload_jobs_completed_total', { name: 'send-email' }), undefined);

    t.startWorkers();
    const done = { name: 'send-email' };
    const after = await eventually(async () => {
      const text = await scrape();
      return sample(text, 'offload_jobs_completed_total', done) === 1 ? text : undefined;
    });
    assert.equal(
      sample(after, 'offload_job_run_seconds_count', { ...done, outcome: 'completed' }),
      1,
    );
    assert.equal(sample(after, 'offload_job_wait_seconds_count', done), 1);
    const waitSum = sample(after, 'offload_job_wait_seconds_sum', done) ?? 0;
    assert.ok(waitSum >= waited, `the wait (${waitSum} s) covers the time without a worker`);
    assert.equal(sample(after, 'offload_queue_latency_seconds', { queue: 'mail' }), 0);
    assert.equal(sample(after, 'offload_queue_jobs', { queue: 'mail', state: 'waiting' }), 0);
    assert.equal(sample(after, 'offload_queue_jobs', { queue: 'mail', state: 'completed' }), 1);
    assert.equal(
      sample(after, 'http_request_duration_seconds_count', {
        method: 'POST',
        route: '/signup',
        status: '202',
      }),
      1,
      'requests are labelled by route pattern and status',
    );
  });

  it('when a job fails for good, then the failed counter of its name moves', async () => {
    t.startWorkers();
    // No such upload: the job fails at once, without retries.
    await t.offloader.enqueue(makeThumbnail, { key: `uploads/${randomUUID()}` });
    const text = await eventually(async () => {
      const scraped = await scrape();
      return sample(scraped, 'offload_jobs_failed_total', { name: 'make-thumbnail' }) === 1
        ? scraped
        : undefined;
    }, 20_000);
    assert.equal(
      sample(text, 'offload_job_run_seconds_count', { name: 'make-thumbnail', outcome: 'failed' }),
      1,
    );
    assert.equal(
      sample(text, 'offload_jobs_completed_total', { name: 'make-thumbnail' }),
      undefined,
    );
  });

  it('when a waiting job is cancelled, then it counts as dropped, not as failed', async () => {
    const accepted = await t.offloader.enqueue(makeThumbnail, { key: `uploads/${randomUUID()}` });
    assert.equal((await t.offloader.cancel(accepted.id))?.status.state, 'cancelled');
    t.startWorkers(); // a worker takes it out of its queue
    const labels = { name: 'make-thumbnail', state: 'cancelled' };
    const text = await eventually(async () => {
      const scraped = await scrape();
      return sample(scraped, 'offload_jobs_dropped_total', labels) === 1 ? scraped : undefined;
    }, 20_000);
    assert.equal(sample(text, 'offload_jobs_failed_total', { name: 'make-thumbnail' }), undefined);
  });
});
