import { createHash, timingSafeEqual } from 'node:crypto';
import { Router } from 'express';
import type { Registry } from 'prom-client';

const digest = (text: string) => createHash('sha256').update(text, 'utf8').digest();

/**
 * GET /metrics: Prometheus text (see src/process/metrics.ts for what is measured). With `token`
 * (METRICS_TOKEN) it needs `Authorization: Bearer <token>`; both sides are hashed to 32 bytes
 * so the compare is constant-time and leaks not even the token's length.
 */
export function metricsRouter({
  registry,
  token,
}: {
  registry: Registry;
  token?: string | undefined;
}): Router {
  const router = Router();
  const expected = token === undefined ? undefined : digest(token);
  router.get('/metrics', async (req, res) => {
    if (expected) {
      const given = /^Bearer +(\S+) *$/i.exec(req.get('authorization') ?? '')?.[1];
      if (given === undefined || !timingSafeEqual(digest(given), expected)) {
        res.setHeader('WWW-Authenticate', 'Bearer realm="metrics"');
        res.status(401).json({ error: 'a bearer token is required (METRICS_TOKEN)' });
        return;
      }
    }
    res.type(registry.contentType).send(await registry.metrics());
  });
  return router;
}
