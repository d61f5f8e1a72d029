// A workflow's parent as its children make it: their progress, added up, and the child whose
// failure failed it.
import { Job } from 'bullmq';
import type { QueueBackend } from './queue-backend.js';
import { sumProgress, type Progress } from './status.js';
import type { JobData } from './types.js';

/** A workflow parent's progress: its children's `{done, total}`, added up. */
export async function childrenProgress(
  { connection }: QueueBackend,
  job: Job<JobData>,
): Promise<Progress | undefined> {
  if (!job.data.children) return undefined; // not a workflow: no dependencies to read
  const { processed = {}, unprocessed = [], failed = [] } = await job.getDependencies();
  const keys = [...Object.keys(processed), ...unprocessed, ...failed];
  if (keys.length === 0) return undefined;
  const pipeline = connection.pipeline();
  for (const key of keys) pipeline.hget(key, 'progress');
  const sum = sumProgress(((await pipeline.exec()) ?? []).map(([, value]) => value));
  return sum.total > 0 || job.data.progressTotal ? sum : undefined;
}

/** BullMQ says "child <key> failed" when a workflow's child failed: say what and why. */
export async function failedChildOf(
  { prefix, queues }: QueueBackend,
  job: Job,
): Promise<string | undefined> {
  const childKey = /^child (.+) failed$/.exec(job.failedReason)?.[1];
  const [, queueName, childJobId] =
    childKey?.slice(prefix.length + 1).match(/^(.+):([^:]+)$/) ?? [];
  const queue = queueName && queues.get(queueName);
  const failedChild = queue && childJobId ? await Job.fromId(queue, childJobId) : undefined;
  if (!failedChild) return undefined;
  return `${failedChild.name} ${String(failedChild.id)} failed: ${failedChild.failedReason}`;
}
