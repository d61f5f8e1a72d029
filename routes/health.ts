import { Router } from 'express';
import type { Readiness } from '../src/process/monitor.js';

/**
 * GET /healthz: the process is alive. GET /readyz: it can take work: Redis answers and passes
 * the preflight (503 with the problems otherwise); it also lists warnings (an evicting Redis,
 * no persistence, a queue no worker consumes) and the live workers per queue.
 */
export function healthRouter({ readiness }: { readiness: () => Promise<Readiness> }): Router {
  const router = Router();
  router.get('/healthz', (_req, res) => {
    res.json({ ok: true });
  });
  router.get('/readyz', async (_req, res) => {
    const report = await readiness();
    res.status(report.ok ? 200 : 503).json(report);
  });
  return router;
}
