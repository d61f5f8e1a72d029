import { pipeline } from 'node:stream/promises';
import { Router } from 'express';
import { NotFoundError, type Storage, type UrlSigner } from '../src/storage/index.js';

/** Types a browser may show inline; everything else downloads, so no stored file runs as a page. */
const INLINE = new Set(['image/avif', 'image/gif', 'image/jpeg', 'image/png', 'image/webp']);

const noFile = { error: 'no such file' };

/**
 * GET /files/<key>?exp=…&sig=…: a stored file, only through a link signed by `signer` (or one
 * with the same secret, in another process) and not yet expired. 403 for an expired or altered link; 404 when the
 * link is genuine but the file is gone (cleaned up, or never written).
 */
export function filesRouter({ storage, signer }: { storage: Storage; signer: UrlSigner }): Router {
  const router = Router();

  // Express 5: `*key` matches the rest of the path, as decoded segments.
  router.get('/files/*key', async (req, res) => {
    const key = req.params.key.join('/');
    const now = Date.now();
    // A key outside the key rules (`..`, a slash smuggled as %2F) fails here: it was never
    // signed, and the disk is not touched.
    const verdict = signer.verify(key, req.query.exp, req.query.sig, now);
    if (!verdict.ok) {
      res.status(403).set('Cache-Control', 'no-store').json({ error: verdict.reason });
      return;
    }
    const info = await storage.stat(key);
    const stream = info && (await storage.get(key).catch(nullIfNotFound));
    if (!info || !stream) {
      res.status(404).set('Cache-Control', 'no-store').json(noFile);
      return;
    }

    const maxAge = Math.floor((verdict.expiresAt.getTime() - now) / 1000);
    res.set({
      'Content-Type': info.contentType,
      'Content-Length': String(info.bytes),
      // private: the link is a capability; shared caches must not hand the file to others.
      'Cache-Control': `private, max-age=${maxAge}`,
      'X-Content-Type-Options': 'nosniff',
      // Should a file still be rendered as a document, it runs no script and loads nothing.
      'Content-Security-Policy': "default-src 'none'; sandbox",
    });
    if (!INLINE.has(info.contentType)) {
      // Keys are [a-z0-9_.-] segments: the name needs no escaping inside the quotes.
      res.set(
        'Content-Disposition',
        `attachment; filename="${key.slice(key.lastIndexOf('/') + 1)}"`,
      );
    }
    if (req.method === 'HEAD') {
      stream.destroy();
      res.end();
      return;
    }
    try {
      await pipeline(stream, res);
    } catch (error) {
      // The client left, or the disk failed mid-way: the 200 is already sent, so log and stop.
      req.log.warn({ err: error, key }, 'download cut short');
    }
  });

  return router;
}

function nullIfNotFound(error: unknown): null {
  if (error instanceof NotFoundError) return null;
  throw error;
}
