import { Router, type Request, type Response } from 'express';
import { JOBS_PATH } from './express.js';
import { JOB_ID } from './ids.js';
import { consoleLogger, type Logger } from './logger.js';
import { FINAL_STATES } from './status.js';
import type { JobStatus, Offloader } from './types.js';

/** How often an open event stream re-reads the status anyway and sends a keep-alive. */
const REFRESH_MS = 2_000;

const notFound = (id: string) => ({ error: `no job ${id}` });

export interface JobsRouterOptions {
  offloader: Offloader;
  /** Where the routes are: `/jobs` unless given (pass the same to `sendAccepted`). */
  basePath?: string;
  /** For a failed status refresh, when the request carries no `req.log` of its own. */
  log?: Logger;
}

/**
 * GET /jobs/:id (the status), GET /jobs/:id/events (the same, live, as server-sent events) and
 * DELETE /jobs/:id (cancel), under `basePath`.
 */
export function jobsRouter({
  offloader,
  basePath = JOBS_PATH,
  log = consoleLogger(),
}: JobsRouterOptions): Router {
  const router = Router();
  const path = `${basePath}/:id`;

  async function find(req: Request<{ id: string }>) {
    const { id } = req.params;
    // Anything but a UUID cannot be a job's id: a 404 without a Redis trip.
    return JOB_ID.test(id) ? offloader.status(id) : null;
  }

  router.get<string, { id: string }>(path, async (req, res) => {
    const status = await find(req);
    if (!status) {
      res.status(404).json(notFound(req.params.id));
      return;
    }
    res.set('Cache-Control', 'no-store').json(status);
  });

  // Cancel. The id is the capability, as for reading the status: whoever may watch may stop.
  router.delete<string, { id: string }>(path, async (req, res) => {
    const { id } = req.params;
    const cancelled = JOB_ID.test(id) ? await offloader.cancel(id) : null;
    if (!cancelled) res.status(404).json(notFound(id));
    // The body is the status as GET /jobs/:id shows it, progress included.
    else if (cancelled.changed) res.set('Cache-Control', 'no-store').json(cancelled.status);
    else {
      // Already final, cancelled included: nothing changed.
      const { status } = cancelled;
      res.status(409).json({ error: `job ${id} is already ${status.state}`, status });
    }
  });

  router.get<string, { id: string }>(`${path}/events`, async (req, res) => {
    const first = await find(req);
    if (!first) {
      res.status(404).json(notFound(req.params.id));
      return;
    }
    await streamEvents(offloader, first, res, (req as { log?: Logger }).log ?? log);
  });

  return router;
}

/**
 * The job's status as server-sent events: each change as it comes, the final state last, then
 * the stream ends.
 */
async function streamEvents(
  offloader: Offloader,
  first: JobStatus,
  res: Response,
  log: Logger,
): Promise<void> {
  res.writeHead(200, {
    'Content-Type': 'text/event-stream',
    'Cache-Control': 'no-store',
    'X-Accel-Buffering': 'no', // nginx and some PaaS routers buffer otherwise
  });

  let last = '';
  const send = (status: JobStatus) => {
    if (res.writableEnded) return;
    const json = JSON.stringify(status);
    if (json !== last) {
      const event = FINAL_STATES.has(status.state) ? status.state : 'status';
      res.write(`event: ${event}\ndata: ${json}\n\n`);
      last = json;
    }
    if (FINAL_STATES.has(status.state)) res.end();
  };

  // Subscribe first, then read the status again: an update between the two cannot be lost.
  const unsubscribe = await offloader.watch(first.id, send);
  // Events can still be missed (a Redis reconnect); a slow re-read is the safety net.
  const timer = setInterval(() => {
    res.write(': keep-alive\n\n');
    offloader.status(first.id).then(
      (status) => {
        if (status) send(status);
        else res.end();
      },
      (error: unknown) => {
        log.warn({ err: error }, 'status refresh failed');
      },
    );
  }, REFRESH_MS);
  // 'close' comes when the stream ends either way: the job finished, or the client left.
  const cleanup = () => {
    clearInterval(timer);
    unsubscribe();
  };
  if (res.closed) cleanup();
  else res.once('close', cleanup);
  send((await offloader.status(first.id)) ?? first);
}
