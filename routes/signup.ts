import { randomUUID } from 'node:crypto';
import { Router } from 'express';
import { z } from 'zod';
import { sendEmail } from '../jobs/index.js';
import type { Deps } from '../src/deps.js';
import { HttpError, parseOr400 } from '../src/http/errors.js';
import { requestOptions, runJob, sendAccepted, type Offloader } from '../src/offload/index.js';

const signupBody = z.strictObject({
  email: z.email().max(254),
  name: z
    .string()
    .trim()
    .min(1)
    .max(100)
    .regex(/^[^\r\n\0]*$/, 'must not contain CR, LF or NUL'),
});
const signupQuery = z.object({ mode: z.enum(['sync', 'offload']).default('offload') });

/**
 * POST /signup {email, name}: the welcome email goes to a worker and the request answers 202 at
 * once. `?mode=sync` sends it inside the request (201), to show what offloading saves; it is a
 * development surface (SYNC_MODE, off by default in production): a request holds a web process
 * for as long as the mail provider takes.
 */
export function signupRouter({ offloader, deps }: { offloader: Offloader; deps: Deps }): Router {
  const router = Router();
  router.post('/signup', async (req, res) => {
    const { mode } = parseOr400(signupQuery, req.query, 'query');
    if (mode === 'sync' && !deps.config.SYNC_MODE) {
      throw new HttpError(403, '?mode=sync is turned off on this server (SYNC_MODE=false)');
    }
    const body = parseOr400(signupBody, req.body);
    // A real app would create the user here; the email needs only the address and the name.
    const input = { template: 'welcome' as const, to: body.email, name: body.name };
    const started = performance.now();

    if (mode === 'sync') {
      const jobId = randomUUID();
      const sent = await runJob(sendEmail, input, {
        jobId,
        attempt: 1,
        log: req.log.child({ jobId, job: sendEmail.name }),
        deps,
        progress: () => Promise.resolve(),
      });
      res.set('Server-Timing', `send;dur=${(performance.now() - started).toFixed(1)}`);
      res.status(201).json({ sent });
      return;
    }

    const accepted = await offloader.enqueue(sendEmail, input, requestOptions(req, body));
    res.set('Server-Timing', `enqueue;dur=${(performance.now() - started).toFixed(1)}`);
    sendAccepted(res, accepted);
  });
  return router;
}
