import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import express, { Router } from 'express';

/** public/, from routes/ (run by tsx) or dist/routes/ (compiled). */
const PUBLIC_DIR = ['../public/', '../../public/']
  .map((path) => fileURLToPath(new URL(path, import.meta.url)))
  .find((dir) => existsSync(`${dir}index.html`));

/** GET /: the demo page, static files from public/ (no build step). */
export function demoRouter(): Router {
  if (!PUBLIC_DIR) throw new Error('public/index.html not found next to routes/');
  const router = Router();
  router.use(
    express.static(PUBLIC_DIR, {
      setHeaders(res) {
        // The page loads only its own files; thumbnails are same-origin /files/ links.
        res.setHeader(
          'Content-Security-Policy',
          "default-src 'self'; img-src 'self' blob:; object-src 'none'; frame-ancestors 'none'",
        );
      },
    }),
  );
  return router;
}
