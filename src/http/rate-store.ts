// A Redis store for express-rate-limit, shared by every web process, that costs the hot path
// less than a round trip per request. rate-limit-redis sends one EVALSHA per request, and loads
// its scripts once at start: on the fail-fast producer connection a Redis that is down then
// breaks it until restart. This store is the same fixed-window count, with two savings:
// - batching: while one script call is in flight, the increments that arrive meanwhile (any
//   limiter, any client) wait and go together in the next call: one round trip for many
//   requests under load, none added when idle;
// - a local pre-check: a client known to be over its limit until the window ends is refused
//   here, without Redis (a flood costs Redis nothing).
import type { ClientRateLimitInfo, Options, Store } from 'express-rate-limit';
import type { Result } from 'ioredis';
import type { RedisConnection } from '../redis/connections.js';

declare module 'ioredis' {
  interface RedisCommander<Context> {
    /** KEYS: counters; ARGV: per key, the hits to add and the window (ms). */
    offloadRateHits(
      numKeys: number,
      ...keysAndArgs: (string | number)[]
    ): Result<number[], Context>;
  }
}

/** INCRBY each counter, start its window if new; answers [hits, ms left] per key. */
const HITS = `
local out = {}
for i, key in ipairs(KEYS) do
  local hits = redis.call('INCRBY', key, ARGV[2 * i - 1])
  local ttl = redis.call('PTTL', key)
  if ttl < 0 then
    ttl = tonumber(ARGV[2 * i])
    redis.call('PEXPIRE', key, ttl)
  end
  out[2 * i - 1] = hits
  out[2 * i] = ttl
end
return out`;

interface Waiting {
  windowMs: number;
  waiters: { resolve: (info: ClientRateLimitInfo) => void; reject: (error: unknown) => void }[];
}

/** Coalesces the increments of every store of one app into one script call at a time. */
export class HitBatcher {
  #pending = new Map<string, Waiting>();
  #flying = false;

  constructor(private readonly redis: RedisConnection) {
    // defineCommand: EVALSHA, and EVAL once when Redis lost the script (a restart).
    redis.defineCommand('offloadRateHits', { lua: HITS });
  }

  hit(key: string, windowMs: number): Promise<ClientRateLimitInfo> {
    return new Promise((resolve, reject) => {
      let waiting = this.#pending.get(key);
      if (!waiting) this.#pending.set(key, (waiting = { windowMs, waiters: [] }));
      waiting.waiters.push({ resolve, reject });
      if (!this.#flying) void this.#flush();
    });
  }

  decrement(key: string): Promise<unknown> {
    return this.redis.decr(key);
  }

  reset(key: string): Promise<unknown> {
    return this.redis.del(key);
  }

  async #flush(): Promise<void> {
    const batch = [...this.#pending];
    this.#pending = new Map();
    this.#flying = true;
    try {
      const args = batch.flatMap(([, { windowMs, waiters }]) => [waiters.length, windowMs]);
      const keys = batch.map(([key]) => key);
      const replies = await this.redis.offloadRateHits(keys.length, ...keys, ...args);
      const now = Date.now();
      batch.forEach(([, { waiters }], i) => {
        const total = Number(replies[2 * i]);
        const resetTime = new Date(now + Number(replies[2 * i + 1]));
        // Each request of the batch gets its own place in the count, as one INCR each would.
        waiters.forEach((waiter, n) => {
          waiter.resolve({ totalHits: total - waiters.length + 1 + n, resetTime });
        });
      });
    } catch (error) {
      for (const [, { waiters }] of batch) for (const waiter of waiters) waiter.reject(error);
    } finally {
      this.#flying = false;
      if (this.#pending.size > 0) void this.#flush();
    }
  }
}

/** Entries of the local pre-check kept before expired ones are swept. */
const SWEEP_AT = 10_000;

/** One limiter's store (express-rate-limit wants one per limiter): `prefix` names the limiter. */
export class RedisRateStore implements Store {
  readonly localKeys = false;
  #windowMs = 60_000;
  #limit = Infinity;
  /** Clients over the limit, until their window resets. */
  #over = new Map<string, ClientRateLimitInfo>();

  constructor(
    private readonly batcher: HitBatcher,
    readonly prefix: string,
  ) {}

  init(options: Options): void {
    this.#windowMs = options.windowMs;
    this.#limit = typeof options.limit === 'number' ? options.limit : Infinity;
  }

  async increment(client: string): Promise<ClientRateLimitInfo> {
    const known = this.#over.get(client);
    if (known?.resetTime && known.resetTime.getTime() > Date.now()) {
      known.totalHits += 1;
      return { ...known };
    }
    const info = await this.batcher.hit(this.prefix + client, this.#windowMs);
    if (info.totalHits > this.#limit) {
      if (this.#over.size >= SWEEP_AT) this.#sweep();
      this.#over.set(client, { ...info });
    } else if (known) this.#over.delete(client);
    return info;
  }

  async decrement(client: string): Promise<void> {
    await this.batcher.decrement(this.prefix + client);
  }

  async resetKey(client: string): Promise<void> {
    this.#over.delete(client);
    await this.batcher.reset(this.prefix + client);
  }

  #sweep(): void {
    const now = Date.now();
    for (const [client, info] of this.#over) {
      if (!info.resetTime || info.resetTime.getTime() <= now) this.#over.delete(client);
    }
  }
}
