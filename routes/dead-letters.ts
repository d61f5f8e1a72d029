import type { Queue } from 'bullmq';
import { Router, type Request } from 'express';
import { z } from 'zod';
import { adminAuth } from '../src/http/admin-auth.js';
import { registry } from '../src/process/boot.js';
import { HttpError, parseOr400 } from '../src/http/errors.js';
import type { Logger } from '../src/logger.js';
import {
  listDeadLetters,
  MAX_PAGE,
  ReplayRefusedError,
  replayDeadLetter,
  UnknownQueueError,
  QueueUnavailableError,
  sendAccepted,
} from '../src/offload/index.js';

export interface DeadLettersOptions {
  /**
   * The queues (none inline: nothing is dead-lettered there) and whether Redis is up: the
   * app's monitor (src/process/monitor.ts) has both.
   */
  monitor: { queues: readonly Queue[]; connected(): boolean };
  /** ADMIN_PASSWORD: unset, these routes are a 404. */
  password: string | undefined;
  /** ADMIN_WRITES: replays are writes, allowed only when the admin area takes writes. */
  writes: boolean;
  log: Logger;
}

const listQuery = z.strictObject({
  queue: z.string().optional(),
  limit: z.coerce.number().int().min(1).max(MAX_PAGE).default(20),
  offset: z.coerce.number().int().min(0).default(0),
});

const replayBody = z.strictObject({
  /** Corrected input; the job's stored input when absent. */
  input: z.unknown().optional(),
});

/**
 * GET /admin/jobs/failed (the dead letters, newest first) and POST /admin/jobs/:id/replay
 * (run one again, optionally with corrected input), behind the admin password. A replay is a
 * write: adminAuth also refuses it from another site's page (CSRF).
 */
export function deadLettersRouter({ monitor, password, writes, log }: DeadLettersOptions): Router {
  const router = Router();
  router.use('/admin/jobs', adminAuth({ password, log, area: 'dead letters' }));
  const source = { registry, queues: monitor.queues };

  /** BullMQ would wait for Redis: answer 503 at once instead, and after a failure mid-way. */
  async function withRedis<T>(operation: () => Promise<T>): Promise<T> {
    if (!monitor.connected()) throw new QueueUnavailableError();
    try {
      return await operation();
    } catch (error) {
      if (!monitor.connected()) throw new QueueUnavailableError(error);
      throw error;
    }
  }

  router.get('/admin/jobs/failed', async (req, res) => {
    const query = parseOr400(listQuery, req.query, 'query');
    const page = await withRedis(() => listDeadLetters(source, query)).catch(badQueue);
    res
      .set('Cache-Control', 'no-store')
      .json({ ...page, limit: query.limit, offset: query.offset });
  });

  router.post('/admin/jobs/:id/replay', async (req: Request<{ id: string }>, res) => {
    const { id } = req.params;
    if (!writes) throw new HttpError(403, 'admin writes are off: set ADMIN_WRITES=true to replay');
    const { input } = parseOr400(replayBody, req.body ?? {});
    const status = await withRedis(() => replayDeadLetter(source, id, input)).catch(
      (error: unknown) => {
        if (error instanceof ReplayRefusedError) throw new HttpError(409, error.message);
        throw error;
      },
    );
    if (!status) {
      res.status(404).json({ error: `no job ${id}` });
      return;
    }
    req.log.info({ jobId: id, job: status.name, corrected: input !== undefined }, 'job replayed');
    sendAccepted(res, { id: status.id, name: status.name, state: status.state });
  });

  return router;
}

function badQueue(error: unknown): never {
  if (error instanceof UnknownQueueError) throw new HttpError(400, error.message);
  throw error;
}
