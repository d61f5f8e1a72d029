import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import type { Queue } from 'bullmq';
import { Router, type Express, type RequestHandler } from 'express';
import { adminAuth } from '../src/http/admin-auth.js';
import type { Logger } from '../src/logger.js';

export const DASHBOARD_PATH = '/admin/queues';

export interface AdminOptions {
  queues: readonly Queue[];
  /** ADMIN_PASSWORD: unset, the dashboard is a 404. */
  password: string | undefined;
  /** ADMIN_WRITES: otherwise the dashboard is read-only. */
  writes: boolean;
  connected: () => boolean;
  log: Logger;
}

/**
 * The queue dashboard (bull-board) at /admin/queues, behind `adminAuth` (password, and
 * same-origin writes). Read-only unless ADMIN_WRITES: bull-board then hides its buttons and
 * refuses its write API, and this router refuses every unsafe method before it gets there.
 */
export function adminRouter({ queues, password, writes, connected, log }: AdminOptions): Router {
  const router = Router();
  router.use(DASHBOARD_PATH, adminAuth({ password, log, area: 'queue dashboard' }));
  if (password === undefined) return router;

  const board = new ExpressAdapter().setBasePath(DASHBOARD_PATH);
  createBullBoard({
    queues: queues.map((queue) => new BullMQAdapter(queue, { readOnlyMode: !writes })),
    serverAdapter: board,
    options: { uiConfig: { boardTitle: 'offload queues' } },
  });
  const readOnly: RequestHandler = (req, res, next) => {
    if (writes || ['GET', 'HEAD', 'OPTIONS'].includes(req.method)) {
      next();
      return;
    }
    res
      .status(405)
      .json({ error: 'the dashboard is read-only: set ADMIN_WRITES=true to change jobs' });
  };
  // BullMQ would wait for Redis; the dashboard's API answers at once instead.
  const redisUp: RequestHandler = (_req, res, next) => {
    if (connected()) {
      next();
      return;
    }
    res.status(503).json({ error: 'redis is unavailable' });
  };
  router.use(`${DASHBOARD_PATH}/api`, redisUp);
  // bull-board serves from an Express app of its own, which would send X-Powered-By again.
  const boardApp = board.getRouter() as Express;
  boardApp.disable('x-powered-by');
  router.use(DASHBOARD_PATH, readOnly, boardApp);
  return router;
}
