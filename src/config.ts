// The only place that reads the environment: every key is parsed, validated and documented
// (in .env.example) here, and the result is frozen so nothing can change it at run time.
import { z } from 'zod';

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
const url = (protocols: readonly string[]) =>
  z.url().refine((value) => protocols.includes(new URL(value).protocol), {
    message: `must start with ${protocols.map((p) => `${p}//`).join(' or ')}`,
  });

/**
 * Used when SIGNING_SECRET is unset, so `npm run dev` works with no configuration and web and
 * worker (which must share the secret) agree without setup; a random per-process secret would
 * void every link the worker signs. It is public (it is in this file), so anyone can forge
 * download links with it: the web process logs a warning at start while it is in use.
 */
export const DEV_SIGNING_SECRET = 'insecure-development-signing-secret-do-not-deploy';

/** `name=value,name=value` (e.g. `media=2,reports=1`): per-queue settings, values parsed by `value`. */
const perQueue = <T>(value: z.ZodType<T>, example: string) =>
  z
    .string()
    .default('')
    .transform((text, ctx) => {
      const settings: Record<string, T> = {};
      for (const pair of text.split(',').filter((part) => part.trim() !== '')) {
        const [name = '', raw = ''] = pair.split('=').map((part) => part.trim());
        const parsed = value.safeParse(raw);
        if (!/^[a-z][a-z0-9-]*$/.test(name) || !parsed.success) {
          ctx.addIssue({
            code: 'custom',
            message: `"${pair.trim()}" is not queue=value (e.g. ${example})`,
          });
          return z.NEVER;
        }
        settings[name] = parsed.data;
      }
      return Object.freeze(settings);
    });

/** A rate: `10/s`, `600/min`, `5/2s`, `100/250ms` → at most `max` jobs per `durationMs`. */
const rate = z.string().transform((text, ctx) => {
  const match = /^(\d+)\/(\d*)(ms|s|min|h)$/.exec(text);
  const units = { ms: 1, s: 1_000, min: 60_000, h: 3_600_000 } as const;
  const max = Number(match?.[1]);
  const durationMs = Number(match?.[2] || 1) * units[(match?.[3] ?? 's') as keyof typeof units];
  if (!match || max < 1 || durationMs < 1) {
    ctx.addIssue({ code: 'custom', message: 'a rate is N/unit, e.g. 10/s, 600/min, 5/2s' });
    return z.NEVER;
  }
  return Object.freeze({ max, durationMs });
});

/** A rate limit per client (`20/min`, `10/15min`), or `off`. */
const clientLimit = z.string().transform((text, ctx) => {
  if (text.trim() === 'off') return null;
  const parsed = rate.safeParse(text.trim());
  if (!parsed.success) {
    ctx.addIssue({ code: 'custom', message: 'a limit is N/unit (e.g. 20/min, 10/15min) or off' });
    return z.NEVER;
  }
  return parsed.data;
});

const schema = z.object({
  PORT: int(0, 65_535).default(3000),
  // One URL, or several comma-separated: the nodes of a Redis Cluster to start from.
  REDIS_URL: z
    .string()
    .default('redis://127.0.0.1:6379')
    .refine(
      (value) =>
        value.split(',').every((part) => url(['redis:', 'rediss:']).safeParse(part.trim()).success),
      'must be redis:// or rediss:// URLs, one, or several comma-separated for a cluster',
    ),
  QUEUE_PREFIX: z
    .string()
    .regex(/^[\w{}-]+$/, 'letters, digits, _, -, { and } only')
    .default('offload'),
  OFFLOAD_MODE: z.enum(['queue', 'embedded', 'inline']).default('queue'),
  // Postgres: the users, and the outbox their jobs are recorded in (src/db/). Unset, signups
  // store nothing and enqueue directly (npm run dev starts a private Postgres and sets it).
  DATABASE_URL: url(['postgres:', 'postgresql:']).optional(),
  DATABASE_POOL_SIZE: int(1, 100).default(10),
  // How often each worker's relay loop looks for outbox rows a crash or an outage left behind.
  OUTBOX_RELAY_INTERVAL_MS: int(10, 60_000).default(1_000),
  // false: the web process leaves every outbox row to the workers' relay loops.
  OUTBOX_FAST_PATH: z.stringbool().default(true),
  WORKER_QUEUES: z
    .string()
    .default('*')
    .transform((value) =>
      value.trim() === '*'
        ? ('*' as const)
        : Object.freeze(
            value
              .split(',')
              .map((name) => name.trim())
              .filter(Boolean),
          ),
    )
    .refine((queues) => queues.length > 0, 'name at least one queue, or * for all'),
  WORKER_CONCURRENCY: int(1, 1_000).default(5),
  QUEUE_CONCURRENCY: perQueue(int(1, 1_000), 'media=2,reports=1'),
  QUEUE_RATE_LIMIT: perQueue(rate, 'mail=10/s'),
  RESULT_TTL: int(1, 365 * 24 * 3600).default(24 * 3600),
  FAILED_TTL: int(1, 365 * 24 * 3600).default(7 * 24 * 3600),
  WORKER_LOCK_MS: int(1_000, 600_000).default(30_000),
  WORKER_STALLED_INTERVAL_MS: int(500, 600_000).default(30_000),
  SHUTDOWN_TIMEOUT_MS: int(0, 29_000).default(25_000),
  SMTP_URL: url(['smtp:', 'smtps:']).optional(),
  MAIL_FROM: z
    .string()
    .regex(/^[^\r\n\0]+$/, 'must be one line')
    .default('offload <no-reply@offload.localhost>'),
  OUTBOX_DIR: z.string().min(1).default('.data/outbox'),
  OUTBOX_DELAY_MS: int(0, 60_000).default(0),
  PUBLIC_URL: url(['http:', 'https:']).optional(),
  STORAGE_DIR: z.string().min(1).default('.data/storage'),
  SIGNING_SECRET: z
    .string()
    .min(32, 'must be at least 32 characters (e.g. 32 random bytes, base64url)')
    .default(DEV_SIGNING_SECRET),
  UPLOAD_MAX_BYTES: int(1, 1 << 30).default(10 * 1024 * 1024),
  IMAGE_MAX_PIXELS: int(1, 1_000_000_000).default(40_000_000),
  // A refused body (413) is read off and thrown away up to these bounds before the connection
  // closes, so clients that send it all before reading still get the answer (src/http/drain.ts).
  DISCARD_MAX_BYTES: int(0, 1 << 30).default(32 * 1024 * 1024),
  DISCARD_MAX_MS: int(0, 600_000).default(10_000),
  THUMBNAIL_WIDTHS: z
    .string()
    .default('128,512,1024')
    .transform((value) => value.split(',').map((width) => Number(width.trim())))
    .refine(
      (widths) => widths.every((width) => Number.isInteger(width) && width >= 1 && width <= 8192),
      'comma-separated whole numbers from 1 to 8192',
    )
    .transform((widths) => Object.freeze([...new Set(widths)].sort((a, b) => a - b))),
  FILE_MAX_AGE_HOURS: int(1, 24 * 365).default(24),
  REPORT_MAX_STUDENTS: int(1, 100_000).default(5_000),
  REPORT_CHUNK_SIZE: int(1, 10_000).default(200),
  REPORT_RENDER_THREADS: int(1, 64).default(1),
  // true: webhooks may call private, loopback and link-local addresses (SSRF guard off).
  WEBHOOK_ALLOW_PRIVATE: z.stringbool().default(false),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  // Unset: the admin area (/admin/...) is off. Long, since Basic auth has no lockout.
  ADMIN_PASSWORD: z.string().min(12, 'must be at least 12 characters').optional(),
  ADMIN_WRITES: z.stringbool().default(false),
  REDIS_TLS_VERIFY: z.stringbool().default(true),
  REDIS_PREFLIGHT_STRICT: z.stringbool().default(false),
  // Set: files go to this S3 (or S3-compatible) bucket instead of STORAGE_DIR.
  S3_BUCKET: z
    .string()
    .regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'an S3 bucket name (3-63 of a-z 0-9 . -)')
    .optional(),
  S3_ENDPOINT: url(['http:', 'https:']).optional(),
  S3_REGION: z
    .string()
    .regex(/^[\w-]+$/, 'a region name, e.g. eu-west-1')
    .default('us-east-1'),
  S3_FORCE_PATH_STYLE: z.stringbool().default(false),
  // Unset: the AWS SDK's default chain (its own reading of these names, a role, ~/.aws ...).
  AWS_ACCESS_KEY_ID: z.string().optional(),
  AWS_SECRET_ACCESS_KEY: z.string().optional(),
  AWS_SESSION_TOKEN: z.string().optional(),

  // Production mode (issue 17). Development surfaces, on by default; NODE_ENV=production turns
  // them off by default (PRODUCTION_DEFAULTS below), and each key turns its surface back on.
  DEMO_PAGE: z.stringbool().default(true),
  SYNC_MODE: z.stringbool().default(true),
  REPORT_SAMPLES: z.stringbool().default(true),
  OUTBOX_PAGE: z.enum(['off', 'admin', 'public']).default('public'),
  MAIL_OUTBOX: z.stringbool().default(true),
  LOG_FORMAT: z.enum(['json', 'pretty']).default('json'),

  // --- HTTP hardening (src/http/security.ts, src/http/rate-limit.ts, src/http/server.ts) ---
  // Requests per client IP (an IPv6 /56) across every web process, counted in Redis.
  RATE_LIMIT_SIGNUP: clientLimit.prefault('20/min'),
  RATE_LIMIT_THUMBNAILS: clientLimit.prefault('30/min'),
  RATE_LIMIT_REPORTS: clientLimit.prefault('10/min'),
  RATE_LIMIT_WEBHOOKS: clientLimit.prefault('60/min'),
  // Failed logins (401) to /admin/... per client IP: the brake on guessing ADMIN_PASSWORD.
  RATE_LIMIT_ADMIN_FAILURES: clientLimit.prefault('10/15min'),
  // Set: GET /metrics needs `Authorization: Bearer <METRICS_TOKEN>`.
  METRICS_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
  // Under the PaaS router's 30 s: a client trickling its headers, or its whole request (an
  // upload's body), is cut off after these.
  HTTP_HEADERS_TIMEOUT_MS: int(1_000, 29_000).default(10_000),
  HTTP_REQUEST_TIMEOUT_MS: int(1_000, 29_000).default(25_000),
});

/**
 * What `NODE_ENV=production` changes: these keys' defaults (README, Deploy, "Production mode"),
 * and no more, but for refusing OUTBOX_PAGE=public. A value set in the environment still wins.
 */
export const PRODUCTION_DEFAULTS: Readonly<Record<string, string>> = Object.freeze({
  DEMO_PAGE: 'false',
  SYNC_MODE: 'false',
  REPORT_SAMPLES: 'false',
  OUTBOX_PAGE: 'off',
  MAIL_OUTBOX: 'false',
  REDIS_PREFLIGHT_STRICT: 'true',
});

/**
 * Queues whose concurrency is not WORKER_CONCURRENCY unless QUEUE_CONCURRENCY names them: a
 * 40 MP image costs a worker 40–75 MiB while it is resized, so 2 at once keep a worker at the
 * worst allowed load under 450 MiB (bench/RESULTS.md, memory).
 */
const DEFAULT_QUEUE_CONCURRENCY = { media: 2 };

type Parsed = z.infer<typeof schema>;
export type Config = Readonly<Omit<Parsed, 'PUBLIC_URL'> & { PUBLIC_URL: string }>;

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

/** Parses `env` (usually `process.env`); throws a ConfigError naming every bad key. */
export function loadConfig(env: Record<string, string | undefined>): Config {
  // An empty value means "unset", as it does in most .env tooling.
  const present = Object.fromEntries(
    Object.entries(env).filter(([key, value]) => key in schema.shape && value !== ''),
  );
  const production = env.NODE_ENV === 'production';
  if (production) {
    for (const [key, value] of Object.entries(PRODUCTION_DEFAULTS)) present[key] ??= value;
  }
  const result = schema.safeParse(present);
  if (!result.success) {
    throw new ConfigError(
      result.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`),
    );
  }
  const parsed = result.data;
  const problems = [];
  if (parsed.REDIS_URL.includes(',') && !/\{[^{}]+\}/.test(parsed.QUEUE_PREFIX)) {
    // Every key of a queue, and every queue of a flow, must hash to one slot of the cluster.
    problems.push(
      'QUEUE_PREFIX: a cluster (several REDIS_URL nodes) needs a hash tag, e.g. {offload}',
    );
  }
  if (!parsed.S3_BUCKET) {
    for (const key of ['S3_ENDPOINT', 'S3_FORCE_PATH_STYLE'] as const) {
      if (present[key] !== undefined) problems.push(`${key}: only used with S3_BUCKET, unset`);
    }
  }
  if (!parsed.AWS_ACCESS_KEY_ID !== !parsed.AWS_SECRET_ACCESS_KEY) {
    problems.push('AWS_SECRET_ACCESS_KEY: give it together with AWS_ACCESS_KEY_ID, or neither');
  }
  problems.push(...productionProblems(parsed, production));
  if (parsed.HTTP_HEADERS_TIMEOUT_MS > parsed.HTTP_REQUEST_TIMEOUT_MS) {
    problems.push('HTTP_HEADERS_TIMEOUT_MS: must not exceed HTTP_REQUEST_TIMEOUT_MS');
  }
  if (problems.length) throw new ConfigError(problems);
  return Object.freeze({
    ...parsed,
    QUEUE_CONCURRENCY: Object.freeze({ ...DEFAULT_QUEUE_CONCURRENCY, ...parsed.QUEUE_CONCURRENCY }),
    PUBLIC_URL: (parsed.PUBLIC_URL ?? `http://localhost:${parsed.PORT}`).replace(/\/+$/, ''),
  });
}

/** The production-mode keys that do not fit together (or fit no production deploy). */
function productionProblems(parsed: Parsed, production: boolean): string[] {
  const problems = [];
  if (!parsed.SMTP_URL && !parsed.MAIL_OUTBOX) {
    // On a PaaS the outbox is the dyno's own disk, gone at the next restart: mail lost unseen.
    problems.push(
      'SMTP_URL: unset, so mail would be written to files on this machine (OUTBOX_DIR), which a PaaS deletes on restart; set SMTP_URL, or MAIL_OUTBOX=true to accept that',
    );
  }
  if (parsed.OUTBOX_PAGE === 'public' && production) {
    // The outbox holds every mail, signed download links included.
    problems.push(
      'OUTBOX_PAGE: public is refused with NODE_ENV=production (the outbox shows every mail and its links); use admin (behind ADMIN_PASSWORD) or off',
    );
  }
  if (parsed.OUTBOX_PAGE === 'admin' && !parsed.ADMIN_PASSWORD) {
    problems.push('OUTBOX_PAGE: admin needs ADMIN_PASSWORD');
  }
  return problems;
}
