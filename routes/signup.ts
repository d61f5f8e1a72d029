import { randomUUID } from 'node:crypto';
import { Router } from 'express';
import { z } from 'zod';
import { sendEmail } from '../jobs/index.js';
import type { Deps } from '../src/deps.js';
import type { Request } from 'express';
import { withTransaction, type Db } from '../src/db/pool.js';
import { HttpError, parseOr400 } from '../src/http/errors.js';
import {
  enqueueOptions,
  IdempotencyConflictError,
  keyedTo,
  requestOptions,
  runJob,
  sendAccepted,
  type Accepted,
  type Offloader,
  type SqlClient,
} from '../src/offload/index.js';

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
 * POST /signup {email, name}: with a database, the user row and its welcome mail's job are
 * written in one transaction (the job in the outbox, relayed to BullMQ after the commit), and
 * the request answers 202 with the user and the job; an address already registered is a 409.
 * The welcome email goes to a worker and the request answers 202 at once. `?mode=sync` sends it inside the request (201), to show what offloading saves; it is a
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
    if (deps.db && mode === 'offload') {
      const started = performance.now();
      const accepted = await createUser(deps.db, offloader, req, body);
      res.set('Server-Timing', `enqueue;dur=${(performance.now() - started).toFixed(1)}`);
      sendAccepted(res, accepted);
      return;
    }
    // No database (DATABASE_URL unset): nothing to store, so the mail takes the address itself.
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

/**
 * The user row and its welcome mail's job, in one transaction: the job is recorded in the
 * outbox (relayed to BullMQ after the commit), so a rollback never sends it and a commit always
 * does. The job carries the user's id only; the worker re-reads the row.
 */
async function createUser(
  db: Db,
  offloader: Offloader,
  req: Request,
  body: z.output<typeof signupBody>,
): Promise<Accepted> {
  const { requestId, key } = enqueueOptions(req);
  const { fingerprint: print } = keyedTo(req, { key }, body);
  return withTransaction(db, async (tx) => {
    const userId = randomUUID();
    const { rows } = await tx.query(
      `INSERT INTO users (id, email, name, signup_key, signup_fingerprint)
       VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING id`,
      [userId, body.email, body.name, key ?? null, print ?? null],
    );
    if (rows.length === 0) return earlierSignup(tx, offloader, body.email, key, print);
    const accepted = await offloader.enqueue(
      sendEmail,
      { template: 'welcome-user', userId },
      { tx, requestId, summary: { user: { id: userId, email: body.email } } },
    );
    // A retry with this key answers this job (see earlierSignup).
    if (key !== undefined) {
      await tx.query('UPDATE users SET welcome_job_id = $1 WHERE id = $2', [accepted.id, userId]);
    }
    return accepted;
  });
}

/**
 * The address (or the Idempotency-Key) is taken: the same request again, with the same key,
 * gets the first answer; the key with another request, 422; the address without it, 409.
 */
async function earlierSignup(
  tx: SqlClient,
  offloader: Offloader,
  email: string,
  key: string | undefined,
  print: string | undefined,
): Promise<Accepted> {
  const { rows } = await tx.query(
    `SELECT id, email, signup_key, signup_fingerprint, welcome_job_id FROM users
      WHERE signup_key = $1 OR lower(email) = lower($2)
      ORDER BY signup_key = $1 DESC NULLS LAST LIMIT 1`,
    [key ?? null, email],
  );
  const earlier = rows[0] as
    | {
        id: string;
        email: string;
        signup_key: string | null;
        signup_fingerprint: string | null;
        welcome_job_id: string | null;
      }
    | undefined;
  if (key !== undefined && earlier?.signup_key === key) {
    if (earlier.signup_fingerprint !== print || !earlier.welcome_job_id) {
      throw new IdempotencyConflictError(sendEmail.name);
    }
    const id = earlier.welcome_job_id;
    const state = await offloader.status(id).then(
      (status) => status?.state ?? 'completed', // gone: its retention passed
      () => 'waiting' as const, // Redis is away: it is in the outbox or the queue
    );
    const user = { id: earlier.id, email: earlier.email };
    return { id, name: sendEmail.name, state, replayed: true, summary: { user } };
  }
  throw new HttpError(409, `${email} is already registered`);
}
