import { Router } from 'express';
import { z } from 'zod';
import { callWebhook } from '../jobs/index.js';
import {
  privateHostProblem,
  webhookEvent,
  webhookPayload,
  webhookUrl,
} from '../jobs/call-webhook.js';
import type { Deps } from '../src/deps.js';
import { parseOr400 } from '../src/http/errors.js';
import { requestOptions, sendAccepted, type Offloader } from '../src/offload/index.js';

/**
 * POST /webhooks {url, event, payload}: the call goes to a worker, which retries it until the
 * receiver takes it; the request answers 202 at once. Unless WEBHOOK_ALLOW_PRIVATE=true, a URL
 * whose host is a private, loopback or link-local address is refused here (names are checked
 * again, resolved, when the job runs). An Idempotency-Key header makes a retried POST answer
 * the same job instead of calling the receiver twice.
 */
export function webhooksRouter({ offloader, deps }: { offloader: Offloader; deps: Deps }): Router {
  // The URL parser would silently drop a CR, LF or tab and escape a NUL: refuse them instead,
  // so the URL called is the one the client sent.
  const oneLine = z.string().regex(/^[^\p{Cc}]*$/u, 'must not contain control characters');
  const body = z.strictObject({
    url: oneLine.pipe(
      deps.config.WEBHOOK_ALLOW_PRIVATE
        ? webhookUrl
        : webhookUrl.superRefine((url, ctx) => {
            const problem = privateHostProblem(new URL(url));
            if (problem) ctx.addIssue({ code: 'custom', message: problem });
          }),
    ),
    event: webhookEvent,
    payload: webhookPayload,
  });
  const router = Router();
  router.post('/webhooks', async (req, res) => {
    const input = parseOr400(body, req.body);
    sendAccepted(res, await offloader.enqueue(callWebhook, input, requestOptions(req, input)));
  });
  return router;
}
