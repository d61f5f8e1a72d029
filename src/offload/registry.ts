import type { AnyJob } from './types.js';
import { groupJob } from './workflow.js';

export interface Registry {
  readonly jobs: readonly AnyJob[];
  /** Every queue some job names, sorted. */
  readonly queues: readonly string[];
  get(name: string): AnyJob | undefined;
}

/** The explicit job list (jobs/index.ts) as a lookup; duplicate names are a start-up error. */
export function createRegistry(jobs: readonly AnyJob[]): Registry {
  // Built in: the job a lone group's members report to (see workflow.ts).
  const byName = new Map<string, AnyJob>([[groupJob.name, groupJob]]);
  for (const job of jobs) {
    if (byName.has(job.name)) throw new Error(`two jobs are named "${job.name}"`);
    byName.set(job.name, job);
  }
  return Object.freeze({
    jobs,
    queues: [...new Set(jobs.map((job) => job.queue))].sort(),
    get: (name: string) => byName.get(name),
  });
}
