// Idempotency keys, as the IETF draft (draft-ietf-httpapi-idempotency-key-header) and Stripe
// have them: a key is bound to a fingerprint of the request it first came with. The same
// request again gets the first job; another request with that key is a conflict (HTTP 422).
import { createHash } from 'node:crypto';
import { configure } from 'safe-stable-stringify';
import { parseInput } from './define.js';
import type { FlowNode } from './workflow.js';

// Keys sorted at every level, so the same value always hashes the same; non-JSON values throw.
const canonical = configure({ deterministic: true, strict: true, bigint: false });

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/** A value's fingerprint: SHA-256 of its canonical JSON (keys sorted). */
export function fingerprint(value: unknown): string {
  return sha256(canonical(value) ?? 'undefined');
}

/** `enqueue`'s default fingerprint: every job of the tree with its validated input. */
export function treeFingerprint(root: FlowNode): string {
  const shape = (node: FlowNode): unknown => ({
    job: node.job.name,
    input: parseInput(node.job, node.input),
    children: node.children.map(shape),
  });
  return fingerprint(shape(root));
}

/** What a key is bound to, stored under it: the request's fingerprint and the 202's summary. */
export interface KeyRecord {
  fingerprint: string;
  summary?: Record<string, unknown>;
}

/** Where a key's record lives: keys are scoped per job (the accepted job's name). */
export const recordKey = (prefix: string, jobName: string, key: string) =>
  `${prefix}:offload:idempotency:${sha256(`${jobName}\n${key}`)}`;

/**
 * What a keyed job's id is derived from. The fingerprint is part of it, so a conflicting
 * request can never land on the first one's job (a workflow's extra children would attach to
 * it); the generation moves on past a job whose enqueue was refused (see settle.ts), so a
 * retry after a 503 makes a new job rather than meeting the refused one.
 */
export const keyedIdSeed = (key: string, print: string, generation: number) =>
  `${key}\n${print}\n${generation}`;
