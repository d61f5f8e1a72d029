// The only place that reads the environment: every key is parsed, validated and documented
// (in .env.example) here, and the result is frozen so nothing can change it at run time.
import { z } from 'zod';
const int = (min, max) => z.coerce.number().int().min(min).max(max);
const url = (protocols) => z.url().refine((value) => protocols.includes(new URL(value).protocol), {
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
const perQueue = (value, example) => z
    .string()
    .default('')
    .transform((text, ctx) => {
    const settings = {};
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
    const units = { ms: 1, s: 1_000, min: 60_000, h: 3_600_000 };
    const max = Number(match?.[1]);
    const durationMs = Number(match?.[2] || 1) * units[(match?.[3] ?? 's')];
    if (!match || max < 1 || durationMs < 1) {
        ctx.addIssue({ code: 'custom', message: 'a rate is N/unit, e.g. 10/s, 600/min, 5/2s' });
        return z.NEVER;
    }
    return Object.freeze({ max, durationMs });
});
const schema = z.object({
    PORT: int(0, 65_535).default(3000),
    // One URL, or several comma-separated: the nodes of a Redis Cluster to start from.
    REDIS_URL: z
        .string()
        .default('redis://127.0.0.1:6379')
        .refine((value) => value.split(',').every((part) => url(['redis:', 'rediss:']).safeParse(part.trim()).success), 'must be redis:// or rediss:// URLs, one, or several comma-separated for a cluster'),
    QUEUE_PREFIX: z
        .string()
        .regex(/^[\w{}-]+$/, 'letters, digits, _, -, { and } only')
        .default('offload'),
    OFFLOAD_MODE: z.enum(['queue', 'embedded', 'inline']).default('queue'),
    WORKER_QUEUES: z
        .string()
        .default('*')
        .transform((value) => value.trim() === '*'
        ? '*'
        : Object.freeze(value
            .split(',')
            .map((name) => name.trim())
            .filter(Boolean)))
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
    THUMBNAIL_WIDTHS: z
        .string()
        .default('128,512,1024')
        .transform((value) => value.split(',').map((width) => Number(width.trim())))
        .refine((widths) => widths.every((width) => Number.isInteger(width) && width >= 1 && width <= 8192), 'comma-separated whole numbers from 1 to 8192')
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
});
export class ConfigError extends Error {
    problems;
    constructor(problems) {
        super(`Invalid configuration:\n  ${problems.join('\n  ')}`);
        this.problems = problems;
        this.name = 'ConfigError';
    }
}
/** Parses `env` (usually `process.env`); throws a ConfigError naming every bad key. */
export function loadConfig(env) {
    // An empty value means "unset", as it does in most .env tooling.
    const present = Object.fromEntries(Object.entries(env).filter(([key, value]) => key in schema.shape && value !== ''));
    const result = schema.safeParse(present);
    if (!result.success) {
        throw new ConfigError(result.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`));
    }
    const parsed = result.data;
    const problems = [];
    if (parsed.REDIS_URL.includes(',') && !/\{[^{}]+\}/.test(parsed.QUEUE_PREFIX)) {
        // Every key of a queue, and every queue of a flow, must hash to one slot of the cluster.
        problems.push('QUEUE_PREFIX: a cluster (several REDIS_URL nodes) needs a hash tag, e.g. {offload}');
    }
    if (!parsed.S3_BUCKET) {
        for (const key of ['S3_ENDPOINT', 'S3_FORCE_PATH_STYLE']) {
            if (present[key] !== undefined)
                problems.push(`${key}: only used with S3_BUCKET, unset`);
        }
    }
    if (!parsed.AWS_ACCESS_KEY_ID !== !parsed.AWS_SECRET_ACCESS_KEY) {
        problems.push('AWS_SECRET_ACCESS_KEY: give it together with AWS_ACCESS_KEY_ID, or neither');
    }
    if (problems.length)
        throw new ConfigError(problems);
    return Object.freeze({
        ...parsed,
        PUBLIC_URL: (parsed.PUBLIC_URL ?? `http://localhost:${parsed.PORT}`).replace(/\/+$/, ''),
    });
}
