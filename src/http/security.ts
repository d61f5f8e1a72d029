// Response headers that every page and answer carries (helmet), and the rate limits: installed
// by createApp before any route, so 404s, errors and refusals carry them too.
import type { Express } from 'express';
import helmet from 'helmet';
import { installRateLimits, type RateLimitOptions } from './rate-limit.js';

/**
 * For every response, HTML or not (an error page is JSON today; a CSP on JSON costs nothing):
 * only this origin's scripts, styles and images, no plugins, never framed (clickjacking).
 * helmet also sends nosniff, a no-referrer policy, HSTS and the rest of its defaults.
 * `upgrade-insecure-requests` is left out: a development server on http:// must still load.
 * The demo page (routes/demo.ts) sets its own, as strict.
 */
const APP_CSP = {
  useDefaults: true,
  directives: {
    'img-src': ["'self'", 'blob:', 'data:'],
    'frame-ancestors': ["'none'"],
    'upgrade-insecure-requests': null,
  },
};

/**
 * bull-board's page (/admin/queues) styles its loading screen inline and loads IBM Plex from
 * Google Fonts; its scripts are its own files. So: inline styles and that font host, no inline
 * script, never framed.
 */
const ADMIN_CSP = {
  useDefaults: true,
  directives: {
    'style-src': ["'self'", "'unsafe-inline'", 'https://fonts.googleapis.com'],
    'font-src': ["'self'", 'data:', 'https://fonts.gstatic.com'],
    'img-src': ["'self'", 'data:'],
    'frame-ancestors': ["'none'"],
    'upgrade-insecure-requests': null,
  },
};

export function installSecurity(app: Express, limits: RateLimitOptions): void {
  app.disable('x-powered-by');
  app.use(helmet({ contentSecurityPolicy: APP_CSP, frameguard: { action: 'deny' } }));
  app.use('/admin', helmet.contentSecurityPolicy(ADMIN_CSP));
  installRateLimits(app, limits);
}
