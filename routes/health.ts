import { Router } from 'express';
import type { Offloader } from '../src/offload/index.js';

/** GET /healthz: the process is alive. GET /readyz: it can take work (its queue answers). */
export function healthRouter({ offloader }: { offloader: Offloader }): Router {
  const router = Router();
  router.get('/healthz', (_req, res) => {
    res.json({ ok: true });
  });
  router.get('/readyz', async (_req, res) => {
    try {
      await offloader.ping();
      res.json({ ok: true, mode: offloader.mode });
    } catch (error) {
      res.status(503).json({
        ok: false,
        mode: offloader.mode,
        problems: [`redis: ${error instanceof Error ? error.message : String(error)}`],
      });
    }
  });
  return router;
}
