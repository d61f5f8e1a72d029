import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { Queue, QueueEvents } from 'bullmq';
import { getDocument } from 'pdfjs-dist/legacy/build/pdf.mjs';
import request from 'supertest';
import yauzl from 'yauzl';
import { zipReport } from '../../jobs/index.js';
import { createLogger } from '../../src/logger.js';
import { runJob } from '../../src/offload/index.js';
import { sampleRoster, type Student } from '../../src/reports/roster.js';
import { cardFileName, rosterKey, zipKey } from '../../src/reports/store.js';
import { createTestApp, eventually, type TestApp } from '../harness/app.js';
import { makeImage } from '../harness/images.js';
import { multipart, MULTIPART_TYPE } from '../harness/multipart.js';
import { startSmtp, type TestSmtp } from '../harness/smtp.js';

const PUBLIC_URL = 'https://ids.example.test';
const log = createLogger('silent', 'test');

interface Status {
  id: string;
  state: string;
  progress: unknown;
  result?: { cards: number; bytes: number; url: string; mailJobId: string };
  error?: string;
}

interface Accepted {
  id: string;
  name: string;
  report: { students: number; chunks: number };
}

/** Polls GET /jobs/:id until the job is final; `seen` gets every status read on the way. */
async function finalStatus(
  t: TestApp,
  id: string,
  timeoutMs = 20_000,
  seen: (status: Status) => void = () => undefined,
): Promise<Status> {
  return eventually(
    async () => {
      const res = await request(t.app).get(`/jobs/${id}`).expect(200);
      const status = res.body as Status;
      seen(status);
      return status.state === 'completed' || status.state === 'failed' ? status : undefined;
    },
    timeoutMs,
    `job ${id} final`,
  );
}

async function completed(t: TestApp, id: string, timeoutMs?: number): Promise<Status> {
  const status = await finalStatus(t, id, timeoutMs);
  assert.equal(status.state, 'completed', JSON.stringify(status));
  return status;
}

/** Downloads a signed link (absolute or not) through the app, as the recipient's browser would. */
async function download(t: TestApp, link: string): Promise<Buffer> {
  const url = new URL(link, PUBLIC_URL);
  const res = await request(t.app)
    .get(url.pathname + url.search)
    .responseType('blob')
    .expect(200)
    .expect('Content-Type', 'application/zip');
  return res.body as Buffer;
}

/** Every entry of a zip, in order, with its bytes. */
async function unzip(zipped: Buffer): Promise<{ name: string; data: Buffer }[]> {
  const zip = await yauzl.fromBufferPromise(zipped, { lazyEntries: true });
  const entries: { name: string; data: Buffer }[] = [];
  await new Promise<void>((resolve, reject) => {
    zip.on('entry', (entry: yauzl.Entry) => {
      zip
        .openReadStreamPromise(entry)
        .then(buffer)
        .then((data) => {
          entries.push({ name: entry.fileName, data });
          zip.readEntry();
        }, reject);
    });
    zip.once('end', resolve);
    zip.once('error', reject);
    zip.readEntry();
  });
  return entries;
}

// pdfjs reads the standard fonts' metrics from its own copies (else it warns and guesses).
const standardFontDataUrl = `${join(dirname(createRequire(import.meta.url).resolve('pdfjs-dist/package.json')), 'standard_fonts')}/`;

/** A PDF's text, one string per text item, as a reader would extract it. */
async function pdfText(pdf: Buffer): Promise<string[]> {
  const document = await getDocument({ data: new Uint8Array(pdf), standardFontDataUrl }).promise;
  try {
    const page = await document.getPage(1);
    return (await page.getTextContent()).items
      .map((item) => ('str' in item ? item.str : ''))
      .filter((text) => text.trim() !== '');
  } finally {
    await document.destroy();
  }
}

/** The reports stored so far, by id (each has a folder under reports/). */
async function storedReports(t: TestApp): Promise<string[]> {
  const ids = new Set<string>();
  for await (const { key } of t.deps.storage.list('reports/')) ids.add(key.split('/')[1] ?? '');
  return [...ids];
}

/** The download link in a report-ready mail's text. */
function linkIn(text: string | undefined): string {
  const link = /^Download: (\S+)$/m.exec(text ?? '')?.[1];
  assert.ok(link, `no download link in:\n${text}`);
  return link;
}

const LINK = new RegExp(
  `^${PUBLIC_URL.replace(/\./g, '\\.')}/files/reports/([0-9a-f-]{36})/id-cards-\\1\\.zip\\?exp=\\d+&sig=[\\w-]+$`,
);

const csv = (rows: string[]) => Buffer.from(`${rows.join('\r\n')}\r\n`);

describe('POST /reports (ID cards)', () => {
  let smtp: TestSmtp;
  before(async () => {
    smtp = await startSmtp();
  });
  after(() => smtp.close());

  const mailsTo = (address: string) => smtp.received.filter((m) => m.to.includes(address));

  describe('in queue mode, with workers whose locks expire in 2 s', () => {
    let t: TestApp;
    let inspect: Queue[];
    let events: QueueEvents;
    const stalled: string[] = [];
    before(async () => {
      t = await createTestApp({
        SMTP_URL: smtp.url,
        PUBLIC_URL,
        // Short locks, checked often: an event loop blocked by rendering would show as stalls.
        WORKER_LOCK_MS: '2000',
        WORKER_STALLED_INTERVAL_MS: '1000',
      });
      inspect = [];
      events = new QueueEvents('reports', {
        connection: { url: t.config.REDIS_URL },
        prefix: t.config.QUEUE_PREFIX,
      });
      events.on('stalled', ({ jobId }) => stalled.push(jobId));
      await events.waitUntilReady();
      t.startWorkers();
    });
    after(async () => {
      await events.close();
      await Promise.all(inspect.map((queue) => queue.close()));
      await t.close();
    });
    const queue = (name: string) => {
      const q = new Queue(name, {
        connection: { url: t.config.REDIS_URL },
        prefix: t.config.QUEUE_PREFIX,
      });
      inspect.push(q);
      return q;
    };

    it('when 2,000 students are asked for, then 10 chunks render them with progress out of 2,000, nothing stalls, and the mail links to a zip of 2,000 readable PDFs', async function () {
      this.timeout(180_000);
      const email = 'registrar-2000@example.edu';
      const res = await request(t.app).post('/reports').send({ email, sample: 2000 }).expect(202);
      const accepted = res.body as Accepted;
      assert.equal(accepted.name, 'zip-report');
      assert.deepEqual(accepted.report, { students: 2000, chunks: 10 });
      assert.equal(res.headers.location, `/jobs/${accepted.id}`);

      const progress: unknown[] = [];
      const status = await finalStatus(t, accepted.id, 170_000, (s) => progress.push(s.progress));
      assert.equal(status.state, 'completed', JSON.stringify(status));
      assert.equal(status.result?.cards, 2000);

      // {done, total} from the first read on, the total never changing, done never going down.
      for (const p of progress) {
        assert.ok(
          typeof p === 'object' && p !== null && 'total' in p && p.total === 2000,
          JSON.stringify(p),
        );
      }
      const done = progress.map((p) => (p as { done: number }).done);
      assert.deepEqual(
        done,
        [...done].sort((a, b) => a - b),
        'done never goes down',
      );
      assert.equal(done.at(-1), 2000);
      const between = new Set(done.filter((d) => d > 0 && d < 2000));
      assert.ok(between.size >= 10, `progress moved in steps: ${[...between].join(', ')}`);
      assert.equal(stalled.length, 0, `stalled jobs: ${stalled.join(', ')}`);

      const mail = await smtp.waitFor((m) => m.to.includes(email), 30_000);
      assert.match(mail.mail.subject ?? '', /2,000 ID cards/);
      const link = linkIn(mail.mail.text);
      const [, reportId = ''] = LINK.exec(link) ?? assert.fail(`not a signed zip link: ${link}`);
      assert.equal(new URL(link).pathname, new URL(status.result.url, PUBLIC_URL).pathname);
      assert.match(mail.mail.html ?? '', /href="https:\/\/ids\.example\.test\/files\/reports\//);

      const zipped = await download(t, link);
      const entries = await unzip(zipped);
      const students = sampleRoster(2000);
      assert.equal(entries.length, 2000);
      assert.deepEqual(
        entries.map((e) => e.name),
        students.map((s) => `id-cards/${cardFileName(s)}`),
      );
      for (const { name, data } of entries) {
        assert.equal(data.subarray(0, 5).toString('latin1'), '%PDF-', name);
      }
      for (const row of [0, 1000, 1999]) {
        const student = students[row] as Student;
        const text = await pdfText((entries[row] as { data: Buffer }).data);
        assert.ok(text.includes(student.name), `${student.name} in ${JSON.stringify(text)}`);
        assert.ok(text.includes(student.id), `${student.id} in ${JSON.stringify(text)}`);
        assert.ok(text.includes('Student ID'), 'the default title');
      }
      assert.deepEqual(
        mailsTo(email).map((m) => m.mail.subject),
        [mail.mail.subject],
        'one mail',
      );
      assert.ok(await t.deps.storage.stat(zipKey(reportId)));
    });

    it('when a CSV roster is uploaded with a title, then every student gets a card carrying that title', async () => {
      const email = 'teacher-csv@example.edu';
      const title = 'Lincoln High · Student ID';
      const roster = csv([
        'id,name,class,email',
        'A-001,Ada Lovelace,7B,ada@example.edu',
        'A-002,Zoë Müller,7B,',
        'A-003,José García,7C,jose@example.edu',
        "A-004,Siobhán O'Brien,7C,",
        'A-005,"Nguyen, Minh",7C,',
      ]);
      const res = await request(t.app)
        .post('/reports')
        .attach('roster', roster, { filename: 'class 7.csv', contentType: 'text/csv' })
        .field('email', email)
        .field('title', title)
        .expect(202);
      const accepted = res.body as Accepted;
      assert.deepEqual(accepted.report, { students: 5, chunks: 1 });
      const status = await completed(t, accepted.id);
      assert.deepEqual(status.progress, { done: 5, total: 5 });
      assert.equal(status.result?.cards, 5);

      const mail = await smtp.waitFor((m) => m.to.includes(email));
      assert.match(mail.mail.subject ?? '', /Your 5 ID cards are ready/);
      const entries = await unzip(await download(t, linkIn(mail.mail.text)));
      assert.deepEqual(
        entries.map((e) => e.name),
        [
          'id-cards/A-001-ada-lovelace.pdf',
          'id-cards/A-002-zoe-muller.pdf',
          'id-cards/A-003-jose-garcia.pdf',
          'id-cards/A-004-siobhan-o-brien.pdf',
          'id-cards/A-005-nguyen-minh.pdf',
        ],
      );
      const names = [
        'Ada Lovelace',
        'Zoë Müller',
        'José García',
        "Siobhán O'Brien",
        'Nguyen, Minh',
      ];
      for (const [i, { data }] of entries.entries()) {
        const text = await pdfText(data);
        assert.equal(text[0], title, 'the title heads the card');
        assert.equal(text[1], names[i]);
        assert.ok(text.includes(`A-00${i + 1}`));
      }
    });

    it('when the zip step runs again for a finished report, then it rebuilds the same zip and enqueues no second mail', async () => {
      const email = 'rerun@example.edu';
      const res = await request(t.app).post('/reports').send({ email, sample: 7 }).expect(202);
      const { id } = res.body as Accepted;
      const first = await completed(t, id);
      await smtp.waitFor((m) => m.to.includes(email));
      const mailsBefore = await t.countJobs('mail');
      const zipBefore = await download(t, first.result?.url ?? '');

      const job = await queue('reports').getJob(id);
      assert.ok(job);
      const again = (await runJob(zipReport, (job.data as { input: unknown }).input, {
        jobId: id,
        attempt: 2,
        log,
        deps: t.deps,
        progress: () => Promise.resolve(),
        enqueue: t.offloader.enqueue.bind(t.offloader),
      })) as NonNullable<Status['result']>;

      assert.equal(again.mailJobId, first.result?.mailJobId, 'the same mail job');
      assert.equal(again.cards, 7);
      assert.equal(again.bytes, first.result?.bytes);
      assert.ok((await download(t, again.url)).equals(zipBefore), 'the same zip, byte for byte');
      assert.equal(await t.countJobs('mail'), mailsBefore, 'no mail job added');
      // Had a second mail job been added, the workers would have sent it by the time the
      // mail queue has nothing left to do.
      const mailQueue = queue('mail');
      await eventually(async () => {
        const counts = await mailQueue.getJobCounts('waiting', 'active', 'delayed', 'prioritized');
        return Object.values(counts).every((n) => n === 0) ? true : undefined;
      });
      assert.equal(mailsTo(email).length, 1, 'exactly one mail');
    });
  });

  describe('when a chunk fails for good', () => {
    let t: TestApp;
    let reports: Queue;
    before(async () => {
      t = await createTestApp({ SMTP_URL: smtp.url, PUBLIC_URL, REPORT_CHUNK_SIZE: '10' });
      reports = new Queue('reports', {
        connection: { url: t.config.REDIS_URL },
        prefix: t.config.QUEUE_PREFIX,
      });
    });
    after(async () => {
      await reports.close();
      await t.close();
    });

    it('then the report fails naming that chunk and why, the zip step never runs, and no mail is sent', async () => {
      const email = 'never-mailed@example.edu';
      const res = await request(t.app).post('/reports').send({ email, sample: 30 }).expect(202);
      const { id, report } = res.body as Accepted;
      assert.deepEqual(report, { students: 30, chunks: 3 });
      // Nothing has run yet, and the status already counts the cards to come.
      const waiting = (await request(t.app).get(`/jobs/${id}`).expect(200)).body as Status;
      assert.equal(waiting.state, 'waiting');
      assert.deepEqual(waiting.progress, { done: 0, total: 30 });

      // Before any worker runs: the stored roster loses its last 5 rows, so the last chunk
      // (rows 20 to 30) finds its students missing, a permanent failure; the others render.
      const [reportId = ''] = await storedReports(t);
      const roster = JSON.parse(
        (await buffer(await t.deps.storage.get(rosterKey(reportId)))).toString('utf8'),
      ) as Student[];
      assert.equal(roster.length, 30);
      await t.deps.storage.put(
        rosterKey(reportId),
        Readable.from([JSON.stringify(roster.slice(0, 25))]),
      );
      t.startWorkers();

      const status = await finalStatus(t, id);
      assert.equal(status.state, 'failed', JSON.stringify(status));
      assert.equal(status.error, `render-cards ${id}.2 failed: the roster has 25 rows, not 30`);

      // Everything settles: two chunks rendered, one failed (no retries: it is permanent),
      // and the report with it.
      const counts = await eventually(async () => {
        const c = await reports.getJobCounts('completed', 'failed', 'active', 'waiting', 'delayed');
        return c.completed === 2 && c.failed === 2 ? c : undefined;
      });
      assert.deepEqual(counts, { completed: 2, failed: 2, active: 0, waiting: 0, delayed: 0 });
      // The cards that did render still count.
      const settled = (await request(t.app).get(`/jobs/${id}`).expect(200)).body as Status;
      assert.equal(settled.state, 'failed');
      assert.deepEqual(settled.progress, { done: 20, total: 30 });
      const failedChunk = await reports.getJob(`${id}.2`);
      assert.equal(failedChunk?.attemptsStarted, 1, 'a permanent failure is not retried');

      assert.equal(await t.countJobs('mail'), 0, 'no mail job');
      assert.equal(mailsTo(email).length, 0, 'no mail');
      assert.equal(await t.deps.storage.stat(zipKey(reportId)), null, 'no zip');
    });
  });

  describe('refuses bad rosters with a 4xx naming the problem, enqueuing and storing nothing', () => {
    let t: TestApp;
    before(async () => {
      t = await createTestApp({ REPORT_MAX_STUDENTS: '10' });
    });
    after(() => t.close());

    async function refused(
      send: (req: request.Test) => request.Test,
      status: number,
      ...expected: RegExp[]
    ): Promise<void> {
      const res = await send(request(t.app).post('/reports'));
      const body = res.body as { error?: string; problems?: string[] };
      assert.equal(res.status, status, JSON.stringify(body));
      const said = [body.error, ...(body.problems ?? [])].join('\n');
      for (const pattern of expected) assert.match(said, pattern);
      assert.equal(await t.countJobs('reports'), 0, 'nothing enqueued');
      assert.deepEqual(await storedReports(t), [], 'nothing stored');
    }

    const upload =
      (file: Buffer, fields: Record<string, string> = { email: 'a@example.edu' }) =>
      (req: request.Test) => {
        let form = req.attach('roster', file, { filename: 'roster.csv', contentType: 'text/csv' });
        for (const [name, value] of Object.entries(fields)) form = form.field(name, value);
        return form;
      };

    it('when the CSV lacks the name column, then 400 naming it', async () => {
      await refused(upload(csv(['id,class', 'S1,5A'])), 400, /^missing column: name$/m);
      await refused(
        upload(csv(['student,full name', 'S1,Ann'])),
        400,
        /missing columns: id, name/,
        /unknown columns: student, full name/,
      );
    });

    it('when ids repeat, then 400 naming both rows', async () => {
      await refused(
        upload(csv(['id,name', 'A1,Ann', 'B2,Bob', 'a1,Al'])),
        400,
        /the roster has 1 problem/,
        /^row 3 \(line 4\): id a1 is already used by row 1 as A1$/m,
      );
    });

    it('when the CSV has more rows than REPORT_MAX_STUDENTS, then 413 naming the count and the limit', async () => {
      const rows = Array.from({ length: 11 }, (_, i) => `S${i},Student ${i}`);
      await refused(
        upload(csv(['id,name', ...rows])),
        413,
        /the roster has 11 students; the limit is 10/,
      );
    });

    it('when the file is not CSV text, then 400 saying so', async () => {
      await refused(
        upload(await makeImage('png', 16, 16)),
        400,
        /not a CSV text file: it contains NUL bytes/,
      );
      await refused(
        upload(Buffer.from([0x69, 0x64, 0x2c, 0xff, 0xfe, 0x0a])),
        400,
        /not a CSV text file: it is not UTF-8 text/,
      );
      await refused(upload(Buffer.alloc(0)), 400, /the file is empty/);
    });

    it('when the CSV is over 1 MB, then 413', async () => {
      const big = Buffer.alloc(1024 * 1024 + 1, 'a');
      await refused(upload(big), 413, /larger than the limit of 1048576 bytes/);
    });

    it('when JSON rows are bad, then 400 naming each', async () => {
      await refused(
        (req) =>
          req.send({
            email: 'a@example.edu',
            students: [
              { id: 'S1', name: 'Ann' },
              { id: 'S2', name: '' },
              { id: '../etc', name: 'Eve' },
              'Bob',
              { id: 'S1', name: 'Ann again', grade: 7 },
            ],
          }),
        400,
        /^row 2: name: is required$/m,
        /^row 3: id: must be 1–64 letters/m,
        /^row 4: must be an object$/m,
        /^row 5: unknown field: grade$/m,
        /^row 5: id S1 is already used by row 1$/m,
      );
      await refused(
        (req) =>
          req.send({
            email: 'a@example.edu',
            students: Array.from({ length: 11 }, (_, i) => ({ id: `S${i}`, name: 'X' })),
          }),
        413,
        /the roster has 11 students; the limit is 10/,
      );
      await refused(
        (req) => req.send({ email: 'a@example.edu', students: [] }),
        400,
        /no students/,
      );
    });

    it('when a sample is over the limit, then 413', async () => {
      await refused(
        (req) => req.send({ email: 'a@example.edu', sample: 11 }),
        413,
        /a sample of 11 students is over the limit of 10/,
      );
      await refused((req) => req.send({ email: 'a@example.edu', sample: 0 }), 400, /^sample:/m);
    });

    it('when the email is missing or invalid, then 400 naming the email', async () => {
      await refused((req) => req.send({ sample: 3 }), 400, /^email:/m);
      await refused((req) => req.send({ email: 'not-an-email', sample: 3 }), 400, /^email:/m);
      await refused(upload(csv(['id,name', 'S1,Ann']), {}), 400, /^email:/m);
      await refused(
        upload(csv(['id,name', 'S1,Ann']), { email: 'x@', title: 'A' }),
        400,
        /^email:/m,
      );
    });

    it('when both students and sample are sent, or neither, then 400 saying to send one', async () => {
      const students = [{ id: 'S1', name: 'Ann' }];
      await refused(
        (req) => req.send({ email: 'a@example.edu', students, sample: 3 }),
        400,
        /either students .*or sample/,
      );
      await refused(
        (req) => req.send({ email: 'a@example.edu' }),
        400,
        /either students .*or sample/,
      );
    });

    it('when the form has an unexpected field, no file, or a bad title, then 400 naming it', async () => {
      const roster = csv(['id,name', 'S1,Ann']);
      await refused(
        upload(roster, { email: 'a@example.edu', school: 'Lincoln' }),
        400,
        /unexpected field "school"/,
      );
      await refused(
        (req) =>
          req
            .set('Content-Type', MULTIPART_TYPE)
            .send(multipart([{ name: 'email', data: 'a@example.edu' }])),
        400,
        /no file in the field "roster"/,
      );
      await refused(
        upload(roster, { email: 'a@example.edu', title: 'Bad\u0007title' }),
        400,
        /^title: must not contain control characters$/m,
      );
    });

    it('when a name or the title is in a script the cards cannot draw, or holds a bidi control, then 400 naming the row and the character', async () => {
      await refused(
        upload(Buffer.from('id,name\nS1,Ada\nS2,Ruth\nS3,אבי כהן\n'), { email: 'a@example.edu' }),
        400,
        /^row 3 \(line 4\): name: "א" \(U\+05D0, Hebrew script\) cannot be printed on the cards/m,
      );
      await refused(
        (req) =>
          req.send({
            email: 'a@example.edu',
            students: [{ id: 'S1', name: 'Ada\u202eecalevoL' }],
          }),
        400,
        /^row 1: name: U\+202E is an invisible formatting character$/m,
      );
      await refused(
        (req) => req.send({ email: 'a@example.edu', title: '서울 고등학교', sample: 2 }),
        400,
        /^title: "서" \(U\+C11C, Hangul script\) cannot be printed/m,
      );
    });
  });

  describe('in inline mode', () => {
    let t: TestApp;
    before(async () => {
      t = await createTestApp({
        OFFLOAD_MODE: 'inline',
        SMTP_URL: smtp.url,
        PUBLIC_URL,
        REPORT_CHUNK_SIZE: '10',
      });
    });
    after(() => t.close());

    it('when a sample of 30 is asked for, then the same contract: 202, completed with progress 30 of 30, and the mail links to 30 cards', async () => {
      const email = 'inline@example.edu';
      const res = await request(t.app).post('/reports').send({ email, sample: 30 }).expect(202);
      const accepted = res.body as Accepted;
      assert.equal(accepted.name, 'zip-report');
      assert.deepEqual(accepted.report, { students: 30, chunks: 3 });
      assert.equal(res.headers.location, `/jobs/${accepted.id}`);

      const status = await completed(t, accepted.id);
      assert.deepEqual(status.progress, { done: 30, total: 30 });
      assert.equal(status.result?.cards, 30);

      const mail = await smtp.waitFor((m) => m.to.includes(email));
      assert.match(mail.mail.subject ?? '', /Your 30 ID cards are ready/);
      const entries = await unzip(await download(t, linkIn(mail.mail.text)));
      assert.deepEqual(
        entries.map((e) => e.name),
        sampleRoster(30).map((s) => `id-cards/${cardFileName(s)}`),
      );
    });
  });
});
