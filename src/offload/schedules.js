// Schedules as code: the `schedule` on each job definition is the truth, and Redis is made to
// match it whenever a worker starts. Upserting a BullMQ job scheduler under the job's name is
// idempotent, so several workers starting at once still create each run once.
import { Queue } from 'bullmq';
import { jobOptions } from './queue.js';
/** Upserts every declared schedule and removes the schedulers no job declares any more. */
export async function reconcileSchedules(options) {
    const { registry, connection, prefix, log } = options;
    await Promise.all(options.queues.map(async (name) => {
        const queue = new Queue(name, { connection, prefix });
        queue.on('error', (error) => log.warn({ err: error, queue: name }, 'queue error'));
        try {
            const declared = registry.jobs.filter((job) => job.queue === name && job.schedule);
            for (const job of declared)
                await upsert(queue, job);
            const existing = await queue.getJobSchedulers();
            for (const { key } of existing) {
                if (!declared.some((job) => job.name === key)) {
                    await queue.removeJobScheduler(key);
                    log.info({ queue: name, schedule: key }, 'schedule removed: no job declares it');
                }
            }
            if (declared.length > 0) {
                log.info({ queue: name, schedules: declared.map((job) => job.name) }, 'schedules set');
            }
        }
        finally {
            await queue.close();
        }
    }));
}
async function upsert(queue, job) {
    const schedule = job.schedule;
    if (!schedule)
        return;
    const repeat = 'everyMs' in schedule
        ? { every: schedule.everyMs }
        : { pattern: schedule.cron, tz: schedule.tz ?? 'UTC' };
    // Runs get scheduler-made ids (repeat:<name>:<time>); their other options are as enqueued.
    await queue.upsertJobScheduler(job.name, repeat, {
        name: job.name,
        data: { input: job.input.parse(schedule.input ?? {}) },
        opts: jobOptions(job),
    });
}
