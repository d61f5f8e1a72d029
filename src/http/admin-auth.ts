// The admin area's door: HTTP Basic auth against ADMIN_PASSWORD, and a CSRF guard on writes.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Request, RequestHandler } from 'express';
import type { Logger } from '../logger.js';

export interface AdminAuthOptions {
  /** ADMIN_PASSWORD; unset turns the area off (404), as if it did not exist. */
  password: string | undefined;
  log: Logger;
  /** Names the area in the log line and the browser's login prompt. */
  area?: string;
}

/**
 * Guards an admin area: every request needs the password (any user name), and unsafe methods
 * must also pass `sameOriginWrites`. Mount it before the area's routes:
 * `router.use('/admin/x', adminAuth({ password: config.ADMIN_PASSWORD, log }))`.
 */
export function adminAuth({ password, log, area = 'admin' }: AdminAuthOptions): RequestHandler {
  if (password === undefined) {
    log.info({ area }, `${area} is off: set ADMIN_PASSWORD to turn it on`);
    // A 404 like any unknown path: an area that is off does not exist.
    return (_req, res) => {
      res.status(404).json({ error: 'not found' });
    };
  }
  const expected = digest(password);
  const csrf = sameOriginWrites();
  return (req, res, next) => {
    const given = basicPassword(req.headers.authorization);
    // Both sides hashed to 32 bytes: timingSafeEqual needs equal lengths, and the compare leaks
    // neither the password's length nor how much of it matched.
    if (given === undefined || !timingSafeEqual(digest(given), expected)) {
      if (given !== undefined) req.log.warn({ area }, 'admin login refused');
      res.setHeader('WWW-Authenticate', `Basic realm="offload ${area}", charset="UTF-8"`);
      res.status(401).json({ error: 'authentication required' });
      return;
    }
    csrf(req, res, next);
  };
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * CSRF guard for unsafe methods (POST, PUT, PATCH, DELETE...): a browser sends Basic auth
 * credentials with any request to this origin, including a form another site posts, so a write
 * must come from this origin's own pages. It trusts what browsers send and pages cannot forge:
 * `Sec-Fetch-Site` (same-origin, or none for a typed URL or bookmark), else an `Origin` whose
 * host is this request's Host. A request with neither header does not come from a browser that
 * could be tricked (curl, scripts), so it passes: the password is its only check. This is the
 * rule of Go's net/http CrossOriginProtection; it needs no token, so no page has to carry one.
 */
export function sameOriginWrites(): RequestHandler {
  return (req, res, next) => {
    if (SAFE_METHODS.has(req.method) || isSameOrigin(req)) {
      next();
      return;
    }
    req.log.warn({ method: req.method, url: req.originalUrl }, 'cross-origin admin write refused');
    res.status(403).json({ error: 'cross-origin request refused' });
  };
}

function isSameOrigin(req: Request): boolean {
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined) return site === 'same-origin' || site === 'none';
  const origin = req.headers.origin;
  if (origin === undefined) return true;
  try {
    // Host, not req.hostname: the port matters, and a proxy keeps the Host the browser sent.
    return new URL(origin).host === req.headers.host;
  } catch {
    return false; // `Origin: null` (sandboxed frames, file: pages) and garbage
  }
}

/** The password of an `Authorization: Basic` header, or undefined. */
function basicPassword(header: string | undefined): string | undefined {
  const encoded = /^Basic +([A-Za-z0-9+/=]+) *$/i.exec(header ?? '')?.[1];
  if (encoded === undefined) return undefined;
  const decoded = Buffer.from(encoded, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon === -1 ? undefined : decoded.slice(colon + 1);
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}
