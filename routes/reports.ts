import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { Router, type Request } from 'express';
import { z } from 'zod';
import { renderCards, zipReport } from '../jobs/index.js';
import type { Deps } from '../src/deps.js';
import { HttpError, parseOr400 } from '../src/http/errors.js';
import { jsonBody as jsonParser } from '../src/http/json-body.js';
import {
  chain,
  chunks,
  enqueueOptions,
  keyedTo,
  sendAccepted,
  step,
  type Offloader,
} from '../src/offload/index.js';
import {
  parseRosterCsv,
  RosterError,
  sampleRoster,
  validateRoster,
  type Student,
} from '../src/reports/roster.js';
import { undrawable } from '../src/reports/fonts.js';
import { rosterKey } from '../src/reports/store.js';
import { receiveFile } from '../src/http/upload.js';

/** The largest CSV roster accepted: 5,000 rows of id, name, class and email fit in well under. */
const MAX_CSV_BYTES = 1024 * 1024;

const details = {
  email: z.email().max(254),
  title: z
    .string()
    .trim()
    .min(1)
    .max(60)
    .regex(/^[^\p{Cc}]*$/u, 'must not contain control characters')
    .superRefine((value, ctx) => {
      // Printed on every card. (Control characters are the regex's problem.)
      const problem = /\p{Cc}/u.test(value) ? undefined : undrawable(value);
      if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
    })
    .default('Student ID'),
};

const jsonBody = z
  .strictObject({
    ...details,
    students: z.array(z.unknown()).optional(),
    sample: z.int().min(1).optional(),
  })
  .refine((body) => (body.students === undefined) !== (body.sample === undefined), {
    message: 'send either students (a list) or sample (how many to make up), not both',
    path: ['students'],
  });

/**
 * POST /reports: ID cards for a class. JSON `{email, students: [...]}` or `{email, sample: N}`,
 * or multipart with a CSV file in `roster` (columns id,name[,class,email]) and the fields
 * `email` and `title`. The roster is validated here (every bad row named) and stored; the job
 * gets its key. The report fans out into chunk jobs that render the cards, then one job zips
 * them and emails a signed link (a workflow: its status adds up the cards of every chunk).
 */
export function reportsRouter({ offloader, deps }: { offloader: Offloader; deps: Deps }): Router {
  const { storage, config } = deps;
  const limits = { maxStudents: config.REPORT_MAX_STUDENTS };
  const router = Router();
  // Its own body limit: 5,000 students as JSON are far over the app's 16 kB.
  const json = jsonParser(2 * 1024 * 1024);

  async function rosterFrom(req: Request) {
    if (req.is('multipart/form-data')) {
      const { saved: csv, fields } = await receiveFile(
        req,
        { field: 'roster', maxBytes: MAX_CSV_BYTES, fields: ['email', 'title'] },
        (file) => buffer(file),
      );
      const form = parseOr400(z.strictObject(details), fields, 'form');
      return { ...form, students: parseRosterCsv(csv, limits) };
    }
    const body = parseOr400(jsonBody, req.body);
    const { email, title, students, sample = 0 } = body;
    if (students) return { email, title, students: validateRoster(students, limits) };
    // Made-up rosters cost a sender nothing to ask for: a development surface (REPORT_SAMPLES).
    if (!config.REPORT_SAMPLES) {
      throw new HttpError(
        403,
        'sample rosters are turned off on this server (REPORT_SAMPLES=false): send students',
      );
    }
    if (sample > limits.maxStudents) {
      throw new HttpError(
        413,
        `a sample of ${sample} students is over the limit of ${limits.maxStudents}`,
      );
    }
    return { email, title, students: sampleRoster(sample) };
  }

  router.post('/reports', json, async (req, res) => {
    const options = enqueueOptions(req); // a bad Idempotency-Key is refused before the roster
    let roster: { email: string; title: string; students: Student[] };
    try {
      roster = await rosterFrom(req);
    } catch (error) {
      if (error instanceof RosterError) {
        throw new HttpError(error.status, error.message, error.problems);
      }
      throw error;
    }
    const { email, title, students } = roster;
    const reportId = randomUUID();
    const issued = new Date().toISOString().slice(0, 10);
    const chunkSize = config.REPORT_CHUNK_SIZE;
    // Celery's chunks + chord: render-cards per chunk of the roster, in parallel, then one
    // zip-report with all of them, which fails without running if a chunk fails for good.
    const cards = chunks(renderCards, students, chunkSize, (chunk, from) => ({
      reportId,
      title,
      issued,
      from,
      to: from + chunk.length,
    }));
    await storage.put(rosterKey(reportId), Readable.from([JSON.stringify(students)]));
    try {
      const accepted = await offloader.start(
        chain(cards, step(zipReport, { reportId, email, issued, chunkSize })),
        {
          ...options,
          ...keyedTo(req, options, roster),
          progressTotal: students.length,
          summary: { report: { students: students.length, chunks: cards.members.length } },
        },
      );
      // A retried request (same Idempotency-Key): the first roster is the job's, not this one.
      if (accepted.replayed) await storage.delete(rosterKey(reportId));
      sendAccepted(res, accepted);
    } catch (error) {
      await storage.delete(rosterKey(reportId));
      throw error;
    }
  });
  return router;
}
