import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Router } from 'express';
import { adminAuth } from '../src/admin-auth.js';
import type { Logger } from '../src/logger.js';
import { escapeHtml } from '../src/mail/templates.js';

const EML = /^[\w-]{1,128}\.eml$/;
const SHOWN = 200;

/**
 * /dev/outbox: the letters the outbox mailer wrote (mounted only when SMTP_URL is unset, and
 * OUTBOX_PAGE is not off). The newest first; each opens as raw RFC 822 text. `password`
 * (OUTBOX_PAGE=admin: ADMIN_PASSWORD) puts it behind the admin area's login; null: open to all.
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

  router.get('/dev/outbox', async (_req, res) => {
    const names = (await readdir(outboxDir).catch(() => [])).filter((name) => EML.test(name));
    const letters = await Promise.all(
      names.map(async (name) => ({ name, mtime: (await stat(join(outboxDir, name))).mtime })),
    );
    letters.sort((a, b) => b.mtime.getTime() - a.mtime.getTime());
    const rows = letters
      .slice(0, SHOWN)
      .map(
        (l) =>
          `<li><a href="/dev/outbox/${escapeHtml(l.name)}">${escapeHtml(l.name)}</a> — ${l.mtime.toISOString()}</li>`,
      )
      .join('\n');
    res.type('html').send(`<!doctype html><meta charset="utf-8"><title>Outbox</title>
<h1>Outbox (${letters.length})</h1><p>Mail the app sent while SMTP_URL is unset.</p>
<ul>${rows}</ul>`);
  });

  router.get('/dev/outbox/:name', async (req, res) => {
    const { name } = req.params;
    // The pattern admits no slash or dot-dot: only files the mailer named can be read.
    const raw = EML.test(name) ? await readFile(join(outboxDir, name)).catch(() => null) : null;
    if (!raw) {
      res.status(404).json({ error: `no letter ${name}` });
      return;
    }
    res.type('text/plain; charset=utf-8').send(raw);
  });

  return router;
}
