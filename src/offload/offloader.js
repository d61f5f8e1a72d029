import { InvalidEnqueueOptionsError } from './errors.js';
import { chord, step } from './workflow.js';
/** For callers without types: what `enqueueMany` cannot honour is refused, not ignored. */
export function refuseInBatches(options) {
    for (const name of ['key', 'children', 'progressTotal']) {
        if (name in options) {
            throw new InvalidEnqueueOptionsError(`enqueueMany takes no ${name}: enqueue one by one`);
        }
    }
}
export const child = step;
/** `enqueue`'s job, with its `children` if any: a chord, as a workflow. */
export function asWorkflow(job, input, children = []) {
    const callback = { kind: 'step', job, input };
    return children.length ? chord(children, callback) : callback;
}
