import { InvalidEnqueueOptionsError } from './errors.js';
import type { EnqueueOptions } from './types.js';

/** When an enqueued job may start (its delay) and until when (its expiry), from its options. */
export function timing(
  { delayMs, at, expiresAt, expiresInMs }: EnqueueOptions,
  now = Date.now(),
): { delayMs: number; expiresAt?: number } {
  // Most jobs start now and never expire: nothing to check (this runs on every enqueue).
  const given = delayMs ?? at ?? expiresAt ?? expiresInMs;
  if (given === undefined) return { delayMs: 0 };
  const refuse = (why: string) => {
    throw new InvalidEnqueueOptionsError(why);
  };
  if (delayMs !== undefined && at !== undefined) refuse('give delayMs or at, not both');
  if (expiresAt !== undefined && expiresInMs !== undefined) {
    refuse('give expiresAt or expiresInMs, not both');
  }
  for (const [name, value] of Object.entries({ delayMs, expiresInMs })) {
    if (value !== undefined && !(Number.isSafeInteger(value) && value >= 0)) {
      refuse(`${name} must be a whole number of ms ≥ 0`);
    }
  }
  const instant = (name: string, value: Date | number | undefined) => {
    const ms = value === undefined ? undefined : Number(value);
    if (ms !== undefined && !Number.isFinite(ms)) refuse(`${name} is not a valid time`);
    return ms;
  };
  const startAt = instant('at', at) ?? now + (delayMs ?? 0);
  const expires =
    instant('expiresAt', expiresAt) ?? (expiresInMs === undefined ? undefined : now + expiresInMs);
  if (expires !== undefined && expires <= Math.max(now, startAt)) {
    refuse('the job would expire before it could start (expiry at or before its ETA, or past)');
  }
  return {
    delayMs: Math.max(0, startAt - now),
    ...(expires === undefined ? {} : { expiresAt: expires }),
  };
}
