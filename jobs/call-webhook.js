import { createHmac } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';
import { z } from 'zod';
import { defineJob, PermanentError, RetryLaterError, } from '../src/offload/index.js';
/** The largest payload a webhook carries, as JSON: a job's input lives in Redis. */
export const WEBHOOK_PAYLOAD_MAX_BYTES = 8 * 1024;
/** One request's time limit unless the input names another; below the job's own `timeoutMs`. */
export const WEBHOOK_TIMEOUT_MS = 10_000;
/** A 429 without Retry-After waits this long (the receiver said "too many", not "how long"). */
export const RETRY_AFTER_DEFAULT_MS = 30_000;
/** Bounds on a receiver's Retry-After: an hour at most, a second at least (no hot loop). */
const RETRY_AFTER_MAX_MS = 3_600_000;
const RETRY_AFTER_MIN_MS = 1_000;
export const CALL_WEBHOOK_RETRY = {
    attempts: 5,
    backoff: 'exponential',
    delayMs: 1_000,
    maxDelayMs: 60_000,
    jitter: 0.2,
};
/**
 * Addresses a webhook must not reach unless WEBHOOK_ALLOW_PRIVATE=true: loopback, private,
 * link-local (cloud metadata at 169.254.169.254), carrier-grade NAT, multicast, reserved, and
 * the IPv6 forms that embed an IPv4 address (BlockList also matches ::ffff:a.b.c.d).
 */
const NOT_PUBLIC = new BlockList();
for (const [network, prefix] of [
    ['0.0.0.0', 8],
    ['10.0.0.0', 8],
    ['100.64.0.0', 10],
    ['127.0.0.0', 8],
    ['169.254.0.0', 16],
    ['172.16.0.0', 12],
    ['192.0.0.0', 24],
    ['192.0.2.0', 24],
    ['192.168.0.0', 16],
    ['198.18.0.0', 15],
    ['198.51.100.0', 24],
    ['203.0.113.0', 24],
    ['224.0.0.0', 3], // multicast and reserved, up to 255.255.255.255
]) {
    NOT_PUBLIC.addSubnet(network, prefix, 'ipv4');
}
for (const [network, prefix] of [
    ['::', 128],
    ['::1', 128],
    ['64:ff9b::', 96], // NAT64
    ['100::', 64],
    ['2001:db8::', 32],
    ['2002::', 16], // 6to4
    ['fc00::', 7],
    ['fe80::', 10],
    ['ff00::', 8],
]) {
    NOT_PUBLIC.addSubnet(network, prefix, 'ipv6');
}
/** False for an address a webhook may not reach by default (see NOT_PUBLIC). */
export function isPublicAddress(address) {
    const family = isIP(address);
    if (family === 0)
        return false;
    return !NOT_PUBLIC.check(address, family === 4 ? 'ipv4' : 'ipv6');
}
/** A URL's host as an address or a name: no IPv6 brackets, no trailing dot. */
const hostOf = (url) => url.hostname.replace(/^\[(.*)\]$/, '$1').replace(/\.$/, '');
/**
 * Why `url`'s host is refused without a DNS lookup (an address literal that is not public,
 * `localhost`), or undefined. What a name resolves to is checked when the job runs.
 */
export function privateHostProblem(url) {
    const host = hostOf(url).toLowerCase();
    if (host === 'localhost' || host.endsWith('.localhost'))
        return 'must not be a local host';
    if (isIP(host) !== 0 && !isPublicAddress(host)) {
        return 'must not be a private, loopback or link-local address';
    }
    return undefined;
}
export const webhookUrl = z
    .string()
    .max(2_048)
    .refine((text) => URL.canParse(text), 'must be an absolute URL')
    .transform((text) => new URL(text))
    .refine((url) => ['http:', 'https:'].includes(url.protocol), 'must be an http or https URL')
    .refine((url) => !url.username && !url.password, 'must not contain a user name or password')
    .transform((url) => url.href);
/** Validated JSON of at most WEBHOOK_PAYLOAD_MAX_BYTES. */
export const webhookPayload = z
    .json()
    .refine((value) => Buffer.byteLength(JSON.stringify(value)) <= WEBHOOK_PAYLOAD_MAX_BYTES, `must be at most ${WEBHOOK_PAYLOAD_MAX_BYTES} bytes as JSON`);
/** An event name: it travels in a header, so letters, digits and . _ : - only. */
export const webhookEvent = z
    .string()
    .max(100)
    .regex(/^[A-Za-z0-9][\w.:-]*$/, 'letters, digits and . _ : - only');
export const callWebhookInput = z.strictObject({
    url: webhookUrl,
    event: webhookEvent,
    payload: webhookPayload,
    timeoutMs: z.int().min(100).max(25_000).default(WEBHOOK_TIMEOUT_MS),
});
/**
 * The key receivers verify signatures with. It is derived from SIGNING_SECRET rather than being
 * it: a receiver holding SIGNING_SECRET itself could sign download links (/files/...).
 */
export function webhookSigningKey(signingSecret) {
    return createHmac('sha256', signingSecret).update('offload webhook signing key').digest('hex');
}
/** `sha256=<hex HMAC of the raw body>`, what X-Offload-Signature carries. */
export function signWebhookBody(signingSecret, body) {
    const mac = createHmac('sha256', webhookSigningKey(signingSecret)).update(body).digest('hex');
    return `sha256=${mac}`;
}
/** Retry-After (delay-seconds or an HTTP date) in ms from `now`, bounded; undefined if absent or unreadable. */
export function retryAfterMs(value, now = Date.now()) {
    const text = value?.trim();
    if (!text)
        return undefined;
    let ms;
    if (/^\d+$/.test(text))
        ms = Number(text) * 1_000;
    else {
        const at = Date.parse(text);
        if (Number.isNaN(at))
            return undefined;
        ms = at - now;
    }
    return Math.min(RETRY_AFTER_MAX_MS, Math.max(RETRY_AFTER_MIN_MS, ms));
}
/**
 * Refuses a host that is, or resolves (in any of its addresses) to, a non-public address. fetch
 * resolves the name again, so a DNS server answering differently the second time (rebinding)
 * gets past this: where that matters, send webhooks through an egress proxy that enforces it.
 */
async function checkPublic(url) {
    const host = hostOf(url);
    const problem = privateHostProblem(url);
    if (problem)
        throw new PermanentError(`webhook url ${problem} (WEBHOOK_ALLOW_PRIVATE is off)`);
    if (isIP(host) !== 0)
        return;
    // A lookup failure is thrown as it is: DNS trouble may pass, so the job is retried.
    const addresses = await lookup(host, { all: true, verbatim: true });
    if (addresses.some(({ address }) => !isPublicAddress(address))) {
        throw new PermanentError('webhook url resolves to a private, loopback or link-local address (WEBHOOK_ALLOW_PRIVATE is off)');
    }
}
/** What a network failure was, for the error: fetch says only "fetch failed". */
function networkReason(error) {
    const cause = error instanceof Error ? error.cause : undefined;
    if (typeof cause?.code === 'string')
        return cause.code;
    return error instanceof Error ? error.message : String(error);
}
/**
 * POSTs `{id, event, payload}` as JSON to a third party's URL, signed (X-Offload-Signature,
 * HMAC-SHA256 of the raw body) and keyed by the job id (Idempotency-Key), so the receiver can
 * check it came from us and drop the duplicates at-least-once delivery brings.
 *
 * 2xx completes; 5xx, 408, network errors and timeouts are retried with backoff; other 4xx
 * (and 3xx: redirects are not followed) fail at once; 429 waits for its Retry-After with the
 * whole queue (the receiver's limit counts every worker's calls), a 503 with Retry-After waits
 * alone; neither spends an attempt. The payload and the URL past its origin are never logged
 * (nor put in error messages): either may carry secrets.
 */
export default defineJob({
    name: 'call-webhook',
    queue: 'webhooks',
    input: callWebhookInput,
    retry: CALL_WEBHOOK_RETRY,
    timeoutMs: 30_000,
    async run(input, ctx) {
        const { config } = ctx.deps;
        const url = new URL(input.url);
        if (!config.WEBHOOK_ALLOW_PRIVATE)
            await checkPublic(url);
        const body = JSON.stringify({ id: ctx.jobId, event: input.event, payload: input.payload });
        const log = ctx.log.child({ webhook: url.origin, event: input.event });
        const started = performance.now();
        let response;
        try {
            response = await fetch(url, {
                method: 'POST',
                body,
                headers: {
                    'Content-Type': 'application/json',
                    'User-Agent': 'offload-webhook',
                    'Idempotency-Key': ctx.jobId,
                    'X-Offload-Event': input.event,
                    'X-Offload-Signature': signWebhookBody(config.SIGNING_SECRET, body),
                },
                // A redirect could lead anywhere, a private address included: it is not followed.
                redirect: 'manual',
                signal: AbortSignal.any([ctx.signal, AbortSignal.timeout(input.timeoutMs)]),
            });
        }
        catch (error) {
            // Cancelled, out of time or shutting down: the runner needs the job's own reason.
            if (ctx.signal.aborted)
                throw ctx.signal.reason;
            if (error instanceof DOMException && error.name === 'TimeoutError') {
                throw new Error(`webhook timed out after ${input.timeoutMs} ms`, { cause: error });
            }
            throw new Error(`webhook request failed: ${networkReason(error)}`, { cause: error });
        }
        const ms = Math.round(performance.now() - started);
        // Only the status matters: let the connection go instead of reading what the receiver said.
        await response.body?.cancel().catch(() => undefined);
        const { status } = response;
        const said = `webhook answered HTTP ${status}`;
        log.info({ status, ms }, said);
        if (status >= 200 && status < 300)
            return { status, ms };
        const retryAfter = retryAfterMs(response.headers.get('retry-after'));
        if (status === 429) {
            throw new RetryLaterError(retryAfter ?? RETRY_AFTER_DEFAULT_MS, said, 'queue');
        }
        if (status === 503 && retryAfter !== undefined) {
            throw new RetryLaterError(retryAfter, said, 'job');
        }
        if (status >= 500 || status === 408)
            throw new Error(said);
        throw new PermanentError(status >= 300 && status < 400 ? `${said} (a redirect)` : said);
    },
});
