import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import express from 'express';
import nodemailer from 'nodemailer';
import request from 'supertest';
import { outboxRouter } from '../../routes/outbox.js';
import { silentLog } from '../harness/runtime.js';
import { createMailer } from '../../src/mail/mailer.js';
import { reportReady, welcome } from '../../src/mail/templates.js';

/** A signed link as long as the report mail's: quoted-printable breaks it with `=` soft breaks. */
const LINK = `http://localhost:3000/files/reports/${randomUUID()}.zip?exp=1999999999&sig=${'A1b2C3d4E5'.repeat(5)}_-x`;
const HOSTILE = '<img src=x onerror=alert(1)>';

describe('GET /dev/outbox (the development mailbox)', () => {
  let app: express.Express;
  let dir: string;
  const ids = { welcome: randomUUID(), report: randomUUID(), attached: randomUUID() };

  before(async () => {
    dir = join(await mkdtemp(join(tmpdir(), 'offload-outbox-')), 'outbox');
    const mailer = createMailer({ from: 'offload <no-reply@offload.localhost>', outboxDir: dir });
    await mailer.send({
      key: ids.welcome,
      to: 'ann@example.com',
      ...welcome({ name: HOSTILE, appUrl: 'http://localhost:3000' }),
    });
    await mailer.send({
      key: ids.report,
      to: 'bob@example.com',
      ...reportReady({ cards: 2000, url: LINK, expiresAt: new Date('2030-01-01T00:00:00Z') }),
    });
    // One with an attachment, built by nodemailer as a provider would receive it.
    const built = await nodemailer
      .createTransport({ streamTransport: true, buffer: true })
      .sendMail({
        from: 'a@example.com',
        to: 'c@example.com',
        subject: 'With a file',
        text: 'see attached',
        attachments: [{ filename: 'notes <1>.html', content: '<script>alert(1)</script>' }],
      });
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, `${ids.attached}.eml`), built.message as Buffer);
    // Oldest to newest: welcome, report, attached.
    const now = Date.now() / 1000;
    await utimes(join(dir, `${ids.welcome}.eml`), now - 20, now - 20);
    await utimes(join(dir, `${ids.report}.eml`), now - 10, now - 10);
    app = express().use(outboxRouter({ outboxDir: dir, password: null, log: silentLog }));
  });

  it('when the list is opened, then it shows date, from, to and subject, newest first, escaped', async () => {
    const res = await request(app).get('/dev/outbox').expect(200).expect('content-type', /html/);
    assert.match(res.text, /<th>Date<\/th><th>From<\/th><th>To<\/th><th>Subject<\/th>/);
    const order = [ids.attached, ids.report, ids.welcome].map((id) =>
      res.text.indexOf(`/dev/outbox/${id}"`),
    );
    assert.ok(
      order.every((at) => at > 0),
      'every letter listed',
    );
    assert.deepEqual(
      [...order].sort((a, b) => a - b),
      order,
      'newest first',
    );
    assert.match(res.text, /Your 2,000 ID cards are ready/);
    assert.match(res.text, /bob@example\.com/);
    assert.match(res.text, /offload &lt;no-reply@offload\.localhost&gt;/);
    assert.match(res.text, /\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC/);
    assert.ok(!res.text.includes(HOSTILE), 'the name is escaped');
    assert.match(res.text, /Welcome, &lt;img src=x onerror=alert\(1\)&gt;!/);
    assert.match(String(res.headers['content-security-policy']), /default-src 'none'/);
  });

  it('when a letter is opened, then its HTML is framed in a sandbox and its text shows the link decoded and clickable', async () => {
    const res = await request(app).get(`/dev/outbox/${ids.report}`).expect(200);
    const frame = /<iframe[^>]*>/.exec(res.text)?.[0] ?? '';
    assert.match(frame, /sandbox="allow-popups allow-popups-to-escape-sandbox allow-downloads"/);
    assert.ok(!/allow-scripts|allow-same-origin/.test(frame), 'no scripts, no same origin');
    assert.match(frame, new RegExp(`src="/dev/outbox/${ids.report}/html"`));
    // The whole link, `&` escaped once, as the text part's anchor.
    const href = LINK.replaceAll('&', '&amp;');
    assert.ok(
      res.text.includes(`<a href="${href}" target="_blank" rel="noopener noreferrer">${href}</a>`),
      res.text,
    );
    assert.match(res.text, /<th>To<\/th><td>bob@example\.com<\/td>/);
    assert.match(res.text, /All headers/);
    assert.match(res.text, /Message-ID/i);
  });

  it('when the HTML part is fetched, then it comes with its own sandboxing CSP, links open in a new tab, and the link is decoded', async () => {
    const res = await request(app).get(`/dev/outbox/${ids.report}/html`).expect(200);
    const csp = String(res.headers['content-security-policy']);
    assert.match(csp, /^sandbox allow-popups allow-popups-to-escape-sandbox allow-downloads;/);
    assert.match(csp, /default-src 'none'/);
    assert.match(res.text, /<head><base target="_blank">/);
    assert.ok(
      res.text.includes(`href="${LINK.replaceAll('&', '&amp;')}"`),
      'no soft line breaks left',
    );
  });

  it('when a letter with a hostile name is opened, then the name is escaped everywhere outside the sandbox', async () => {
    const res = await request(app).get(`/dev/outbox/${ids.welcome}`).expect(200);
    assert.ok(!res.text.includes(HOSTILE));
  });

  it('when an attachment is downloaded, then it comes as a download of the same bytes, never rendered', async () => {
    const page = await request(app).get(`/dev/outbox/${ids.attached}`).expect(200);
    assert.match(
      page.text,
      /<a href="\/dev\/outbox\/[\w-]+\/attachments\/0" download>notes &lt;1&gt;\.html<\/a>/,
    );
    const res = await request(app).get(`/dev/outbox/${ids.attached}/attachments/0`).expect(200);
    assert.match(String(res.headers['content-disposition']), /^attachment; filename=/);
    assert.match(String(res.headers['content-type']), /^application\/octet-stream/);
    assert.equal(res.headers['x-content-type-options'], 'nosniff');
    assert.equal(Buffer.from(res.body as Buffer).toString(), '<script>alert(1)</script>');
    await request(app).get(`/dev/outbox/${ids.attached}/attachments/1`).expect(404);
    await request(app).get(`/dev/outbox/${ids.attached}/attachments/x`).expect(404);
  });

  it('when the .eml is asked for, then the raw source comes as text; an unknown or odd id is a 404', async () => {
    const raw = await request(app).get(`/dev/outbox/${ids.report}.eml`).expect(200);
    assert.match(String(raw.headers['content-type']), /^text\/plain/);
    assert.match(raw.text, /Content-Transfer-Encoding: quoted-printable/);
    for (const path of [
      `/dev/outbox/${randomUUID()}`,
      '/dev/outbox/..%2Fsecret',
      `/dev/outbox/${randomUUID()}/html`,
    ]) {
      await request(app).get(path).expect(404);
    }
  });
});
