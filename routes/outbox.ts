import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Router, type Response } from 'express';
import PostalMime, { type Address, type Attachment, type Email } from 'postal-mime';
import { adminAuth } from '../src/http/admin-auth.js';
import type { Logger } from '../src/logger.js';
import { escapeHtml } from '../src/mail/templates.js';

/** A letter's id: the outbox mailer names files `<job id>.eml`, so no slash or dot-dot fits. */
const ID = /^[\w-]{1,128}$/;
const SHOWN = 200;
/**
 * The letter's HTML is someone's markup (user input ends up in it): it runs in a frame with no
 * scripts, no same-origin access and no requests but images, fonts and styles; links open in a
 * new tab and downloads are allowed. The same rules come as the frame's `sandbox` attribute and
 * as the HTML's own CSP, so opening its URL directly is no less safe.
 */
const SANDBOX = 'allow-popups allow-popups-to-escape-sandbox allow-downloads';
const HTML_CSP = `sandbox ${SANDBOX}; default-src 'none'; img-src data: http: https:; style-src 'unsafe-inline' http: https:; font-src data: http: https:; frame-ancestors 'self'`;
/** The outbox's own pages: inline styles, the letter's frame, nothing else; never framed. */
const PAGE_CSP =
  "default-src 'none'; style-src 'unsafe-inline'; frame-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const STYLE = `body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222;max-width:72rem}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.35rem .6rem;border-bottom:1px solid #ddd;vertical-align:top}
th{font-weight:600;white-space:nowrap}tr:hover td{background:#f6f8fa}a{color:#0b5cad}
iframe{width:100%;height:28rem;border:1px solid #ccc;border-radius:4px;background:#fff}
pre{white-space:pre-wrap;word-break:break-word;background:#f6f8fa;padding:.8rem;border-radius:4px}
td.header{font-family:ui-monospace,monospace;font-size:.85rem;word-break:break-all}`;

const page = (res: Response, title: string, body: string) => {
  res.set('Content-Security-Policy', PAGE_CSP);
  res.type('html').send(`<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>${escapeHtml(title)}</title><style>${STYLE}</style></head><body>
${body}
</body></html>`);
};

const addresses = (list: (Address | undefined)[] | undefined) =>
  (list ?? [])
    .flatMap((a) => (a?.group ? a.group : a ? [a] : []))
    .map(({ name, address }) => (name ? `${name} <${address}>` : address))
    .join(', ');
const when = (date: string | undefined, fallback: Date) => {
  const parsed = date ? new Date(date) : fallback;
  return (Number.isNaN(parsed.getTime()) ? fallback : parsed)
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, ' UTC');
};

/** Plain text, escaped, with its http(s) URLs as links (the mail's own text, decoded). */
function linkify(text: string): string {
  return text
    .split(/(https?:\/\/[^\s<>"]+)/)
    .map((part, i) => {
      const safe = escapeHtml(part);
      return i % 2
        ? `<a href="${safe}" target="_blank" rel="noopener noreferrer">${safe}</a>`
        : safe;
    })
    .join('');
}

/** Links in the letter's HTML open in a new tab, not inside the frame. */
function targetBlank(html: string): string {
  const base = '<base target="_blank">';
  for (const tag of [/<head\b[^>]*>/i, /<html\b[^>]*>/i, /<!doctype[^>]*>/i]) {
    const match = tag.exec(html);
    if (match)
      return (
        html.slice(0, match.index + match[0].length) +
        base +
        html.slice(match.index + match[0].length)
      );
  }
  return base + html;
}

/**
 * /dev/outbox: the letters the outbox mailer wrote (mounted only when SMTP_URL is unset, and
 * OUTBOX_PAGE is not off), as a mail client shows them: a list (date, from, to, subject; newest first), and each letter with
 * its HTML part in a sandboxed frame, its text part, its headers and attachments. Parsed with
 * postal-mime, so quoted-printable and base64 are decoded and links work. `/dev/outbox/<id>.eml`
 * is the raw source.
 * `password` (OUTBOX_PAGE=admin: ADMIN_PASSWORD) puts it behind the admin area's login; null:
 * open to all.
 */
export function outboxRouter({
  outboxDir,
  password,
  log,
}: {
  outboxDir: string;
  password: string | undefined | null;
  log: Logger;
}): Router {
  const router = Router();
  if (password !== null) router.use('/dev/outbox', adminAuth({ password, log, area: 'outbox' }));
  /** The parsed letter, or undefined when there is no such file. */
  const letter = async (
    id: string,
  ): Promise<{ raw: Buffer; mail: Email; mtime: Date } | undefined> => {
    if (!ID.test(id)) return undefined;
    const file = join(outboxDir, `${id}.eml`);
    const [raw, info] = await Promise.all([readFile(file), stat(file)]).catch(() => [
      undefined,
      undefined,
    ]);
    if (!raw || !info) return undefined;
    return { raw, mail: await PostalMime.parse(raw), mtime: info.mtime };
  };
  const notFound = (res: Response, id: string) => {
    res.status(404).json({ error: `no letter ${id} in the outbox` });
  };

  router.get('/dev/outbox', async (_req, res) => {
    const names = (await readdir(outboxDir).catch(() => [])).filter((n) => n.endsWith('.eml'));
    const files = await Promise.all(
      names
        .map((name) => name.slice(0, -4))
        .filter((id) => ID.test(id))
        .map(async (id) => ({ id, mtime: (await stat(join(outboxDir, `${id}.eml`))).mtime })),
    );
    files.sort((a, b) => b.mtime.getTime() - a.mtime.getTime());
    const shown = await Promise.all(
      files.slice(0, SHOWN).map(({ id }) => letter(id).then((l) => ({ id, l }))),
    );
    const rows = shown
      .flatMap(({ id, l }) => (l ? [{ id, ...l }] : [])) // gone since the readdir
      .map(({ id, mail, mtime }) => {
        return `<tr><td>${escapeHtml(when(mail.date, mtime))}</td><td>${escapeHtml(addresses([mail.from]))}</td>
<td>${escapeHtml(addresses(mail.to))}</td><td><a href="/dev/outbox/${escapeHtml(id)}">${escapeHtml(mail.subject || '(no subject)')}</a></td></tr>`;
      })
      .join('\n');
    const more = files.length > SHOWN ? `<p>The newest ${SHOWN} of ${files.length}.</p>` : '';
    page(
      res,
      'Outbox',
      `<h1>Outbox (${files.length})</h1><p>Mail the app sent while SMTP_URL is unset: nobody received it.</p>${more}
<table><thead><tr><th>Date</th><th>From</th><th>To</th><th>Subject</th></tr></thead><tbody>
${rows || '<tr><td colspan="4">No mail yet.</td></tr>'}</tbody></table>`,
    );
  });

  router.get('/dev/outbox/:name', async (req, res) => {
    const { name } = req.params;
    // `<id>.eml`: the raw source, as the mailer wrote it (the list's old links keep working).
    const id = name.endsWith('.eml') ? name.slice(0, -4) : name;
    const found = await letter(id);
    if (!found) {
      notFound(res, name);
      return;
    }
    if (id !== name) {
      res.type('text/plain; charset=utf-8').send(found.raw);
      return;
    }
    const { mail, mtime } = found;
    const base = `/dev/outbox/${escapeHtml(id)}`;
    const subject = mail.subject || '(no subject)';
    const summary = (
      [
        ['Subject', subject],
        ['From', addresses([mail.from])],
        ['To', addresses(mail.to)],
        ['Date', when(mail.date, mtime)],
      ] as const
    )
      .filter(([, value]) => value)
      .map(([key, value]) => `<tr><th>${key}</th><td>${escapeHtml(value)}</td></tr>`)
      .join('');
    const attachments = mail.attachments
      .map(
        (a, i) =>
          `<li><a href="${base}/attachments/${i}" download>${escapeHtml(a.filename ?? `attachment-${i + 1}`)}</a> (${escapeHtml(a.mimeType)}, ${attachmentBytes(a).length} bytes)</li>`,
      )
      .join('');
    const headers = mail.headers
      .map(
        (h) =>
          `<tr><th>${escapeHtml(h.originalKey)}</th><td class="header">${escapeHtml(h.value)}</td></tr>`,
      )
      .join('');
    page(
      res,
      subject,
      `<p><a href="/dev/outbox">← Outbox</a> · <a href="${base}.eml">source (.eml)</a></p>
<h1>${escapeHtml(subject)}</h1>
<table id="summary">${summary}</table>
${mail.html === undefined ? '' : `<h2>HTML</h2><iframe id="html" title="The HTML part" sandbox="${SANDBOX}" src="${base}/html"></iframe>`}
${mail.text === undefined ? '' : `<h2>Text</h2><pre id="text">${linkify(mail.text)}</pre>`}
${attachments ? `<h2>Attachments</h2><ul id="attachments">${attachments}</ul>` : ''}
<details id="headers"><summary>All headers (${mail.headers.length})</summary><table>${headers}</table></details>`,
    );
  });

  router.get('/dev/outbox/:id/html', async (req, res) => {
    const found = await letter(req.params.id);
    if (found?.mail.html === undefined) {
      notFound(res, req.params.id);
      return;
    }
    // Framed by the letter's page only (the app's X-Frame-Options says DENY everywhere else).
    res.set({ 'Content-Security-Policy': HTML_CSP, 'X-Frame-Options': 'SAMEORIGIN' });
    res.type('html').send(targetBlank(found.mail.html));
  });

  router.get('/dev/outbox/:id/attachments/:index', async (req, res) => {
    const found = await letter(req.params.id);
    const attachment = found?.mail.attachments[Number(req.params.index)];
    if (!attachment || !/^\d+$/.test(req.params.index)) {
      notFound(res, `${req.params.id} attachment ${req.params.index}`);
      return;
    }
    // Always a download, never rendered on this origin (an attached .html could run scripts).
    res.attachment(attachment.filename ?? `attachment-${req.params.index}`);
    res.type('application/octet-stream');
    res.set('X-Content-Type-Options', 'nosniff');
    res.send(attachmentBytes(attachment));
  });

  return router;
}

function attachmentBytes({ content, encoding }: Attachment): Buffer {
  if (typeof content === 'string')
    return Buffer.from(content, encoding === 'utf8' ? 'utf8' : 'base64');
  return Buffer.from(content instanceof ArrayBuffer ? new Uint8Array(content) : content);
}
