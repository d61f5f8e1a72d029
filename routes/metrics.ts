import { Router } from 'express';
import type { Registry } from 'prom-client';

/** GET /metrics: Prometheus text (see src/metrics.ts for what is measured). */
export function metricsRouter({ registry }: { registry: Registry }): Router {
  const router = Router();
  router.get('/metrics', async (_req, res) => {
    res.type(registry.contentType).send(await registry.metrics());
  });
  return router;
}
