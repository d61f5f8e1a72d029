import { groupJob } from './workflow.js';
/** The explicit job list (jobs/index.ts) as a lookup; duplicate names are a start-up error. */
export function createRegistry(jobs) {
    // Built in: the job a lone group's members report to (see workflow.ts).
    const byName = new Map([[groupJob.name, groupJob]]);
    for (const job of jobs) {
        if (byName.has(job.name))
            throw new Error(`two jobs are named "${job.name}"`);
        byName.set(job.name, job);
    }
    return Object.freeze({
        jobs,
        queues: [...new Set(jobs.map((job) => job.queue))].sort(),
        get: (name) => byName.get(name),
    });
}
