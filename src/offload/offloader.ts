// Helpers both offloaders share (their types are in types.ts).
import { InvalidEnqueueOptionsError } from './errors.js';
import type { AnyJob, ManyOptions, Step, Workflow } from './types.js';
import { chord, step } from './workflow.js';

/** For callers without types: what `enqueueMany` cannot honour is refused, not ignored. */
export function refuseInBatches(options: ManyOptions): void {
  for (const name of ['key', 'fingerprint', 'summary', 'children', 'progressTotal']) {
    if (name in options) {
      throw new InvalidEnqueueOptionsError(`enqueueMany takes no ${name}: enqueue one by one`);
    }
  }
}

/** A chord's header job, made with `child()` (= `step()`): its input is checked against its job. */
export const child = step;

/** `enqueue`'s job, with its `children` if any: a chord, as a workflow. */
export function asWorkflow(job: AnyJob, input: unknown, children: readonly Step[] = []): Workflow {
  const callback: Step = { kind: 'step', job, input };
  return children.length ? chord(children, callback) : callback;
}
