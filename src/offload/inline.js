import { parseInput } from './define.js';
import { runJob } from './execute.js';
import { childId, jobIdFor } from './ids.js';
import { asWorkflow, refuseInBatches, } from './offloader.js';
import { sumProgress } from './status.js';
import { timing } from './timing.js';
import { compile } from './workflow.js';
/** How many finished jobs inline mode remembers for `status()`; the oldest are forgotten. */
const REMEMBERED = 1_000;
/**
 * Celery's `task_always_eager`: `enqueue` runs the job inside the call, once, with no Redis.
 * For tests and debugging; the HTTP contract (202 + status URL) is the same as in queue mode.
 */
export function createInlineOffloader(options) {
    const finished = new Map();
    const running = new Map();
    // Jobs that enqueue follow-ups run them inline too, inside their own run.
    const enqueue = (job, input, enqueueOptions) => offloader.enqueue(job, input, enqueueOptions);
    function remember(status) {
        finished.set(status.id, status);
        if (finished.size > REMEMBERED)
            finished.delete(finished.keys().next().value);
    }
    function failed(job, id, error) {
        const now = new Date().toISOString();
        return {
            id,
            name: job.name,
            state: 'failed',
            progress: 0,
            error,
            attempts: 0,
            createdAt: now,
            finishedAt: now,
        };
    }
    async function run(job, input, id, requestId, results = []) {
        const status = {
            id,
            name: job.name,
            state: 'active',
            progress: 0,
            attempts: 1,
            createdAt: new Date().toISOString(),
            startedAt: new Date().toISOString(),
        };
        const log = options.log.child({ jobId: id, job: job.name, reqId: requestId });
        try {
            status.result = await runJob(job, input, {
                jobId: id,
                attempt: 1,
                log,
                deps: options.deps,
                enqueue,
                results: () => Promise.resolve(results),
                progress: (value) => {
                    status.progress = value;
                    return Promise.resolve();
                },
            });
            status.state = 'completed';
        }
        catch (error) {
            status.state = 'failed';
            status.error = error instanceof Error ? error.message : String(error);
            log.warn({ err: error }, 'job failed');
        }
        status.finishedAt = new Date().toISOString();
        return status;
    }
    /**
     * A workflow's tree, depth first: a job's children run first, one by one, then the job with
     * their results. A child that fails for good fails its parent unless the policy says continue.
     */
    async function runTree(node, id, { requestId, progressTotal }) {
        const childStatuses = [];
        for (const [index, kid] of node.children.entries()) {
            const done = await runTree(kid, childId(id, index), { requestId });
            childStatuses.push(done);
            if (done.state === 'failed' && node.onChildFailure === 'fail') {
                return failed(node.job, id, `${done.name} ${done.id} failed: ${done.error ?? ''}`);
            }
        }
        const results = childStatuses.filter((s) => s.state === 'completed').map((s) => s.result);
        const status = await run(node.job, node.input, id, requestId, results);
        const sum = sumProgress(childStatuses.map((s) => s.progress));
        if (sum.total > 0)
            status.progress = { done: sum.done, total: progressTotal ?? sum.total };
        return status;
    }
    async function submit(root, enqueueOptions) {
        timing(enqueueOptions); // refuses what queue mode refuses; then runs now, whatever the delay
        // Every input is checked before anything runs, as queue mode checks before adding.
        const check = (node) => ({
            ...node,
            input: parseInput(node.job, node.input),
            children: node.children.map(check),
        });
        const tree = check(root);
        const id = jobIdFor(root.job.name, enqueueOptions.key);
        const name = root.job.name;
        // A keyed duplicate gets the first call's job, finished or still running.
        const earlier = finished.get(id) ?? (await running.get(id));
        if (earlier)
            return { id, name, state: earlier.state, replayed: true };
        const workflow = runTree(tree, id, enqueueOptions);
        running.set(id, workflow);
        try {
            const status = await workflow;
            remember(status);
            return { id, name, state: status.state };
        }
        finally {
            running.delete(id);
        }
    }
    const offloader = {
        mode: 'inline',
        enqueue: (job, input, enqueueOptions = {}) => submit(compile(asWorkflow(job, input, enqueueOptions.children)), enqueueOptions),
        async enqueueMany(job, inputs, manyOptions = {}) {
            refuseInBatches(manyOptions);
            for (const input of inputs)
                parseInput(job, input); // every one, before any runs
            const accepted = [];
            for (const input of inputs)
                accepted.push(await offloader.enqueue(job, input, manyOptions));
            return accepted;
        },
        start: (workflow, startOptions = {}) => submit(compile(workflow), startOptions),
        status: (id) => Promise.resolve(finished.get(id) ?? null),
        // Every inline job is final before its id is known: there is never anything to cancel.
        cancel: (id) => Promise.resolve(finished.get(id) ?? null),
        // Inline jobs are final before anyone can watch them: nothing will ever change.
        watch: () => Promise.resolve(() => undefined),
        ping: () => Promise.resolve(),
        close: () => Promise.resolve(),
    };
    return offloader;
}
