// Workflows, Celery's canvas: `chain`, `group`, `chord` and `chunks` build a tree of steps that
// both offloaders run the same way. Queue mode adds the tree as one BullMQ flow, atomically:
// a job starts once every job it waits for (its children) has completed, and reads their
// results with `ctx.results()`. A flow is a tree, so a job waits for many but feeds only one:
// a group can start a chain (that is a chord), not follow a step.
import { z } from 'zod';
import { defineJob } from './define.js';
import type {
  AnyJob,
  Chain,
  FailurePolicy,
  Group,
  JobDefinition,
  Step,
  Workflow,
} from './types.js';

/** One job with its input (checked against the job's schema when the workflow starts). */
export const step = <Schema extends z.ZodType>(
  job: JobDefinition<Schema>,
  input: z.input<Schema>,
): Step => ({ kind: 'step', job: job, input });

/** Runs in parallel; the group's result is its members' results, in order. */
export const group = (
  members: readonly Workflow[],
  { onFailure = 'fail' }: { onFailure?: FailurePolicy } = {},
): Group => {
  if (members.length === 0) throw new Error('a group needs at least one member');
  return { kind: 'group', members, onFailure };
};

/** One after the other; each step gets the one before's result as `(await ctx.results())[0]`. */
export const chain = (...steps: readonly Workflow[]): Chain => {
  if (steps.length === 0) throw new Error('a chain needs at least one step');
  return { kind: 'chain', steps };
};

/** The group in parallel, then `callback` with all their results (in order). */
export const chord = (
  header: readonly Workflow[],
  callback: Step,
  options: { onFailure?: FailurePolicy } = {},
): Chain => chain(group(header, options), callback);

/** `items` split into groups of `size`, one job each (e.g. 2,000 students as 10 × 200). */
export function chunks<Schema extends z.ZodType, Item>(
  job: JobDefinition<Schema>,
  items: readonly Item[],
  size: number,
  toInput: (chunk: Item[], from: number) => z.input<Schema>,
  options: { onFailure?: FailurePolicy } = {},
): Group {
  if (!(Number.isSafeInteger(size) && size >= 1)) throw new Error('chunk size must be ≥ 1');
  const members = [];
  for (let from = 0; from < items.length; from += size) {
    members.push(step(job, toInput(items.slice(from, from + size), from)));
  }
  return group(members, options);
}

/** A group on its own needs a job to wait for its members: this one returns their results. */
export const groupJob = defineJob({
  name: 'offload-group',
  queue: 'offload-group', // not used: it runs on the queue of the group's first member
  input: z.strictObject({}),
  retry: { attempts: 1, backoff: 'fixed', delayMs: 0 },
  run: (_input, ctx) => ctx.results(),
});

/** One job of the compiled tree, with the jobs it waits for. */
export interface FlowNode {
  job: AnyJob;
  input: unknown;
  /** Where it runs (a job's own queue; a group's is its first member's). */
  queue: string;
  children: FlowNode[];
  /** What this job does when one of its children fails for good. */
  onChildFailure: FailurePolicy;
}

/** The tree a workflow runs as; its root is the job whose id and status stand for the whole. */
export function compile(workflow: Workflow): FlowNode {
  switch (workflow.kind) {
    case 'step':
      return leaf(workflow);
    case 'group': {
      const children = workflow.members.map(compile);
      return {
        job: groupJob,
        input: {},
        queue: children[0]?.queue ?? groupJob.queue,
        children,
        onChildFailure: workflow.onFailure,
      };
    }
    case 'chain': {
      const steps = workflow.steps.flatMap((s) => (s.kind === 'chain' ? s.steps : [s]));
      const [first, ...rest] = steps;
      if (!first) throw new Error('a chain needs at least one step');
      let node: FlowNode | undefined;
      let pending: Group | undefined = first.kind === 'group' ? first : undefined;
      if (!pending) node = compile(first);
      for (const next of rest) {
        if (next.kind !== 'step') {
          throw new Error(
            'in a chain, only the first step may be a group: a job can wait for many, but feeds only one (BullMQ flows are trees)',
          );
        }
        // After a group, the step waits for its members directly: a chord.
        const children = pending ? pending.members.map(compile) : node ? [node] : [];
        node = { ...leaf(next), children, onChildFailure: pending?.onFailure ?? 'fail' };
        pending = undefined;
      }
      return node ?? compile(first);
    }
  }
}

function leaf({ job, input }: Step): FlowNode {
  return { job, input, queue: job.queue, children: [], onChildFailure: 'fail' };
}
