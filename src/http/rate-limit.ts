// Rate limits per client on the routes that cost work and on failed admin logins, counted in
// Redis so every web process shares one count (express-rate-limit, src/http/rate-store.ts).
import type { Express, RequestHandler } from 'express';
import { rateLimit, type Store } from 'express-rate-limit';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import { HitBatcher, RedisRateStore } from './rate-store.js';
import type { RedisConnection } from '../redis/connections.js';

type Limit = { max: number; durationMs: number } | null;

/** A store error is logged at most this often: while Redis is down every request has one. */
const STORE_ERROR_LOG_MS = 10_000;

export interface RateLimitOptions {
  config: Config;
  /** The producer connection; none (inline mode): each process counts in memory on its own. */
  redis: RedisConnection | undefined;
  log: Logger;
}

/**
 * Mounts the limiters before the routes, so a refused request is answered before its body is
 * read: nothing is stored or enqueued for it. When Redis is down the limiters let requests
 * through (with a warning in the log): the routes that take work answer 503 on their own then,
 * and a limiter that turned an outage into 500s on every route would hide that answer.
 */
export function installRateLimits(app: Express, { config, redis, log }: RateLimitOptions): void {
  const batcher = redis && new HitBatcher(redis);
  let loggedAt = 0;
  const storeError = (error: unknown) => {
    if (Date.now() - loggedAt < STORE_ERROR_LOG_MS) return;
    loggedAt = Date.now();
    log.warn({ err: error }, 'rate limits are off while Redis is unavailable');
  };

  const limiter = (
    name: string,
    limit: Limit,
    extra: Partial<Parameters<typeof rateLimit>[0]> = {},
  ): RequestHandler | undefined => {
    if (!limit) return undefined;
    const store: Store | undefined =
      batcher && new RedisRateStore(batcher, `${config.QUEUE_PREFIX}:rate:${name}:`);
    const per = describe(limit.durationMs);
    return rateLimit({
      windowMs: limit.durationMs,
      limit: limit.max,
      ...(store && { store }),
      standardHeaders: 'draft-7',
      legacyHeaders: false,
      passOnStoreError: true,
      // error: the store failed (Redis away); warn: express-rate-limit's own configuration checks.
      logger: {
        error: storeError,
        warn: (error, message) => log.warn({ err: error }, message ?? 'rate limiter warning'),
      },
      handler(req, res) {
        req.log.warn({ limiter: name }, 'rate limit reached');
        res.status(429).json({
          error: `too many requests: at most ${limit.max} ${name} requests per ${per} from one client; retry after ${res.get('Retry-After') ?? '?'} s`,
        });
      },
      ...extra,
    });
  };

  const routes: [string, string, Limit][] = [
    ['/signup', 'signup', config.RATE_LIMIT_SIGNUP],
    ['/thumbnails', 'thumbnails', config.RATE_LIMIT_THUMBNAILS],
    ['/reports', 'reports', config.RATE_LIMIT_REPORTS],
    ['/webhooks', 'webhooks', config.RATE_LIMIT_WEBHOOKS],
  ];
  for (const [path, name, limit] of routes) {
    const guard = limiter(name, limit);
    if (guard) app.post(path, guard);
  }
  // Only refused logins count: an admin at work is never slowed down.
  const admin = limiter('admin-login', config.RATE_LIMIT_ADMIN_FAILURES, {
    skipSuccessfulRequests: true,
    requestWasSuccessful: (_req, res) => res.statusCode !== 401,
  });
  if (admin) app.use('/admin', admin);
}

function describe(ms: number): string {
  if (ms % 3_600_000 === 0) return ms === 3_600_000 ? 'hour' : `${ms / 3_600_000} hours`;
  if (ms % 60_000 === 0) return ms === 60_000 ? 'minute' : `${ms / 60_000} minutes`;
  return ms % 1_000 === 0 ? `${ms / 1_000} s` : `${ms} ms`;
}
