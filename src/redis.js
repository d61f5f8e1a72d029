import { Cluster, Redis } from 'ioredis';
/** How long a producer command may take before the request gives up and answers 503. */
export const PRODUCER_COMMAND_TIMEOUT_MS = 1_000;
const PRODUCER = {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: PRODUCER_COMMAND_TIMEOUT_MS,
    connectTimeout: PRODUCER_COMMAND_TIMEOUT_MS,
};
const WORKER = { maxRetriesPerRequest: null };
/**
 * A producer connection (web requests): it fails fast instead of queueing commands while Redis
 * is away, so a request answers 503 at once rather than hanging; it still reconnects by itself.
 * To one Redis, or to a cluster when `url` lists several nodes.
 */
export function connectProducer(url, log, tls) {
    return connect(url, log, tls, 'producer', PRODUCER);
}
/** A worker connection: waits through outages and reconnects forever, as BullMQ requires. */
export function connectWorker(url, log, tls) {
    return connect(url, log, tls, 'worker', WORKER);
}
/** connectProducer for code that needs one plain Redis (benchmarks, tests): no cluster. */
export function createProducerConnection(url, log, tls) {
    return connectSingle(url, log, tls, 'producer', PRODUCER);
}
/** connectWorker for code that needs one plain Redis (benchmarks, tests): no cluster. */
export function createWorkerConnection(url, log, tls) {
    return connectSingle(url, log, tls, 'worker', WORKER);
}
function connectSingle(...args) {
    const redis = connect(...args);
    if (redis instanceof Cluster) {
        redis.disconnect();
        throw new Error('this needs one Redis URL, not a cluster');
    }
    return redis;
}
/** REDIS_URL's nodes: one URL, or several, comma-separated, for a cluster. */
export const redisUrls = (url) => url.split(',').map((part) => part.trim());
/**
 * True for a lost or refused connection. Those are logged once per outage by the connection
 * itself, so the queues and workers that relay the same error can ignore them.
 */
export function isConnectionError(error) {
    const code = error?.code;
    return ((typeof code === 'string' &&
        /^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENOTFOUND|EPIPE|EHOSTUNREACH)$/.test(code)) ||
        (error instanceof Error && /Connection is closed|Stream isn't writeable/.test(error.message)));
}
function connect(url, log, tls, role, options) {
    const urls = redisUrls(url);
    const redisOptions = {
        ...options,
        // Only for rediss://: a `tls` option would turn TLS on for a redis:// URL too.
        ...(url.startsWith('rediss:') && tls?.verify === false
            ? { tls: { rejectUnauthorized: false } }
            : {}),
        connectionName: `offload:${role}`,
        // Back off up to 2 s between reconnects, never give up: outages end.
        retryStrategy: (times) => Math.min(times * 100, 2_000),
    };
    let redis;
    if (urls.length === 1) {
        redis = new Redis(url, redisOptions);
    }
    else {
        // A cluster: the nodes to start from (it finds the rest), and the first URL's user,
        // password and TLS for every node.
        const first = new URL(urls[0] ?? '');
        const { retryStrategy, ...nodeOptions } = redisOptions;
        redis = new Cluster(urls.map((node) => ({
            host: new URL(node).hostname,
            port: Number(new URL(node).port || 6379),
        })), {
            redisOptions: {
                ...nodeOptions,
                ...(first.username ? { username: decodeURIComponent(first.username) } : {}),
                ...(first.password ? { password: decodeURIComponent(first.password) } : {}),
                ...(first.protocol === 'rediss:' && !nodeOptions.tls ? { tls: {} } : {}),
            },
            clusterRetryStrategy: retryStrategy,
            enableOfflineQueue: options.enableOfflineQueue ?? true,
        });
    }
    // An emitter without an `error` listener crashes the process; log it once per outage instead.
    let down = false;
    redis.on('error', (error) => {
        if (!down)
            log.warn({ err: error, role }, 'redis connection error');
        down = true;
    });
    redis.on('ready', () => {
        if (down)
            log.info({ role }, 'redis connection restored');
        down = false;
    });
    return redis;
}
