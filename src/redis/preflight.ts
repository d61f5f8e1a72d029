// The Redis preflight: is this Redis fit to hold jobs? Run by both processes when they connect,
// and by /readyz on each probe.
import type { Cluster, Redis } from 'ioredis';
import type { Logger } from '../logger.js';

/** BullMQ's Lua scripts need Redis 6.2 (e.g. LMOVE, ZRANGE BYSCORE...). */
export const MIN_REDIS_VERSION = [6, 2, 0] as const;

export interface RedisFindings {
  version?: string;
  maxmemoryPolicy?: string;
  /** 'aof', 'rdb' (snapshots only), 'none', or 'rdb?' when the save points cannot be read. */
  persistence?: 'aof' | 'rdb' | 'none' | 'rdb?';
  /** INFO memory: used_memory and maxmemory (0: no limit), in bytes. */
  memory?: { used: number; max: number };
  /** Reasons to refuse to run. */
  problems: string[];
  /** Reasons to worry, loudly. */
  warnings: string[];
}

/**
 * Reads the server's INFO (and its `save` points, where CONFIG is allowed: managed Redis often
 * forbids it) and judges it. Rejects when Redis cannot be asked at all.
 */
export async function inspectRedis(
  redis: Redis | Cluster,
  { strict }: { strict: boolean },
): Promise<RedisFindings> {
  const info = parseInfo(await redis.info());
  const save = info.get('aof_enabled') === '1' ? undefined : await savePoints(redis);
  return judgeRedis(info, save, { strict });
}

/**
 * The verdict on a server's INFO fields and `save` config (undefined: unknown). `strict`
 * (REDIS_PREFLIGHT_STRICT) turns an evicting policy from a warning into a problem.
 */
export function judgeRedis(
  info: ReadonlyMap<string, string>,
  save: string | undefined,
  { strict }: { strict: boolean },
): RedisFindings {
  const findings: RedisFindings = { problems: [], warnings: [] };
  const used = Number(info.get('used_memory'));
  const max = Number(info.get('maxmemory'));
  if (Number.isFinite(used) && Number.isFinite(max)) findings.memory = { used, max };

  const version = info.get('redis_version');
  findings.version = version;
  if (!version || compareVersions(version, MIN_REDIS_VERSION) < 0) {
    findings.problems.push(
      `redis: version ${version ?? 'unknown'} is older than ${MIN_REDIS_VERSION.join('.')}, which BullMQ needs`,
    );
  }

  const policy = info.get('maxmemory_policy');
  findings.maxmemoryPolicy = policy;
  if (policy !== undefined && policy !== 'noeviction') {
    // The fix, and (when refusing) how to run anyway: strict is the production default.
    const fix =
      "set it to noeviction (CONFIG SET maxmemory-policy noeviction, or your provider's setting, e.g. heroku redis:maxmemory --policy noeviction)";
    (strict ? findings.problems : findings.warnings).push(
      `redis: maxmemory-policy is ${policy}: a full Redis will silently delete jobs; ${fix}${strict ? '; REDIS_PREFLIGHT_STRICT=false runs anyway' : ''}`,
    );
  }

  if (info.get('aof_enabled') === '1') {
    findings.persistence = 'aof';
  } else {
    findings.persistence = save === undefined ? 'rdb?' : save === '' ? 'none' : 'rdb';
    findings.warnings.push(
      findings.persistence === 'none'
        ? 'redis: persistence is off (no AOF, no snapshots): a Redis restart loses every job'
        : 'redis: AOF is off (appendonly no): a Redis crash loses the jobs since its last snapshot',
    );
  }
  return findings;
}

/**
 * Checks Redis each time `redis` (re)connects, and logs what it finds: problems as fatal,
 * warnings as warn. `refuse` is called on problems (the entry points exit).
 */
export function preflightOnConnect(
  redis: Redis | Cluster,
  { strict, log, refuse }: { strict: boolean; log: Logger; refuse: () => void },
): void {
  const check = () => {
    inspectRedis(redis, { strict }).then(
      (findings) => {
        const { problems, warnings, ...facts } = findings;
        for (const warning of warnings) log.warn(facts, warning);
        if (problems.length > 0) {
          log.fatal({ ...facts, problems }, 'redis preflight failed: refusing to run');
          refuse();
        } else {
          log.info(facts, 'redis preflight passed');
        }
      },
      (error: unknown) => {
        // Redis went away between connecting and answering: the next connect checks again.
        log.warn({ err: error }, 'redis preflight could not run');
      },
    );
  };
  if (redis.status === 'ready') check();
  redis.on('ready', check);
}

async function savePoints(redis: Redis | Cluster): Promise<string | undefined> {
  try {
    const reply = (await redis.config('GET', 'save')) as unknown;
    return Array.isArray(reply) && typeof reply[1] === 'string' ? reply[1].trim() : undefined;
  } catch {
    return undefined; // CONFIG is disabled (managed Redis)
  }
}

export function parseInfo(text: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const line of text.split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon > 0 && !line.startsWith('#')) fields.set(line.slice(0, colon), line.slice(colon + 1));
  }
  return fields;
}

export function compareVersions(version: string, minimum: readonly number[]): number {
  const parts = version.split('.').map((part) => Number.parseInt(part, 10) || 0);
  for (let i = 0; i < minimum.length; i++) {
    const difference = (parts[i] ?? 0) - (minimum[i] ?? 0);
    if (difference !== 0) return difference;
  }
  return 0;
}

/**
 * Readiness's verdict on memory, apart from the preflight's (a full Redis is a state to wait
 * out, not a reason for a process to refuse to run): out of memory is a problem, 90% a warning.
 */
export function judgeMemory(
  memory: RedisFindings['memory'],
  policy: string | undefined,
): { problem?: string; warning?: string } {
  if (!memory || memory.max === 0) return {};
  const usage = `${mb(memory.used)} used of maxmemory ${mb(memory.max)}`;
  if (memory.used >= memory.max && policy === 'noeviction') {
    return {
      problem: `Redis is out of memory (${usage}): every enqueue fails until jobs are removed (shorter RESULT_TTL / FAILED_TTL) or maxmemory is raised`,
    };
  }
  if (memory.used >= 0.9 * memory.max) {
    return { warning: `Redis is nearly out of memory (${usage})` };
  }
  return {};
}

const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`;
