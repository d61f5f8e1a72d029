// The development outbox in headless Chromium, against real `web` and `worker` processes with
// SMTP_URL unset: the welcome and report mails listed, opened as they will look, and the
// report's download link (quoted-printable in the .eml) clicked to a working zip.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { eventually } from '../harness/app.js';
import { sharedRedisUrl } from '../harness/global.js';
import { freePort } from '../harness/ports.js';
import { startProcess, type Proc } from '../harness/procfile.js';
import { launchChromium, SCREENSHOTS } from './chromium.js';

describe('the outbox in a browser (/dev/outbox)', function () {
  this.timeout(120_000);
  let browser: Browser | undefined;
  let page: Page;
  const procs: Proc[] = [];
  let base = '';
  let outbox = '';
  const ids = { welcome: '', report: '' };

  const post = async (path: string, body: unknown) => {
    const res = await fetch(`${base}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    assert.equal(res.status, 202);
    return ((await res.json()) as { id: string }).id;
  };
  const completed = (id: string) =>
    eventually(
      async () => {
        const { state } = (await (await fetch(`${base}/jobs/${id}`)).json()) as { state: string };
        return state === 'completed' ? state : undefined;
      },
      60_000,
      `job ${id} completed`,
    );

  before(async function () {
    browser = await launchChromium();
    if (!browser) this.skip();
    await mkdir(SCREENSHOTS, { recursive: true });
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    const dir = await mkdtemp(join(tmpdir(), 'offload-outbox-browser-'));
    outbox = join(dir, 'outbox');
    const env = {
      REDIS_URL: sharedRedisUrl(),
      QUEUE_PREFIX: `o${randomUUID().slice(0, 8)}`,
      OUTBOX_DIR: outbox, // SMTP_URL unset: mail goes to .eml files, /dev/outbox shows them
      STORAGE_DIR: join(dir, 'storage'),
      PUBLIC_URL: base,
      PORT: String(port),
      LOG_LEVEL: 'info',
    };
    const web = startProcess('web', env);
    const worker = startProcess('worker', env);
    procs.push(web, worker);
    await Promise.all([
      web.waitForLog((l) => l.msg === 'web listening'),
      worker.waitForLog((l) => l.msg === 'consuming queues'),
    ]);
    ids.welcome = await post('/signup', { email: 'ann@example.com', name: 'Ann <Outbox>' });
    const report = await post('/reports', { email: 'bob@example.com', sample: 3 });
    await Promise.all([completed(ids.welcome), completed(report)]);
    // The report's mail is a follow-up job: wait for its letter (the only other one).
    ids.report = await eventually(
      async () => {
        const names = await readdir(outbox);
        return names.find((n) => n.endsWith('.eml') && n !== `${ids.welcome}.eml`)?.slice(0, -4);
      },
      30_000,
      'the report mail',
    );
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  });

  after(async () => {
    await browser?.close();
    await Promise.all(procs.map((p) => p.stop('SIGKILL')));
  });

  it('when the outbox is opened, then both mails are listed newest first with date, from, to and subject', async () => {
    await page.goto(`${base}/dev/outbox`);
    const rows = page.locator('tbody tr');
    assert.equal(await rows.count(), 2);
    const cells = async (i: number) =>
      (await rows.nth(i).locator('td').allTextContents()).map((t) => t.trim());
    const [newest, oldest] = [await cells(0), await cells(1)];
    assert.match(newest[0]!, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/);
    assert.deepEqual(newest.slice(1), [
      'offload <no-reply@offload.localhost>',
      'bob@example.com',
      'Your 3 ID cards are ready',
    ]);
    assert.deepEqual(
      oldest.slice(2),
      ['ann@example.com', 'Welcome, Ann <Outbox>!'],
      'shown as text, escaped',
    );
    await page.screenshot({ path: join(SCREENSHOTS, 'outbox.png'), fullPage: true });
  });

  it('when the welcome mail is opened, then its HTML renders in the sandboxed frame and the text part shows too', async () => {
    await page.goto(`${base}/dev/outbox`);
    await page.getByRole('link', { name: 'Welcome, Ann <Outbox>!' }).click();
    await page.waitForURL(`${base}/dev/outbox/${ids.welcome}`);
    const frame = page.frameLocator('#html');
    assert.equal(await frame.locator('h1').textContent(), 'Welcome, Ann <Outbox>!');
    assert.equal(await frame.getByRole('link').getAttribute('href'), base);
    assert.match((await page.locator('#text').textContent()) ?? '', /Thanks for signing up/);
    assert.equal(
      await page.locator('#html').getAttribute('sandbox'),
      'allow-popups allow-popups-to-escape-sandbox allow-downloads',
    );
    await page.screenshot({ path: join(SCREENSHOTS, 'outbox-welcome.png'), fullPage: true });
  });

  it('when the report mail’s download link is clicked, then the zip downloads, and the text part has the same link', async () => {
    await page.goto(`${base}/dev/outbox/${ids.report}`);
    const raw = await readFile(join(outbox, `${ids.report}.eml`), 'utf8');
    assert.match(raw, /=\r?\n/, 'the .eml has quoted-printable soft line breaks to decode');
    const link = page.frameLocator('#html').getByRole('link', { name: 'download the ID cards' });
    const href = (await link.getAttribute('href')) ?? '';
    assert.match(href, new RegExp(`^${base}/files/reports/[^?]+\\.zip\\?exp=\\d+&sig=[\\w-]+$`));
    const textLink = page.locator('#text a', { hasText: '/files/reports/' });
    assert.equal(await textLink.getAttribute('href'), href, 'the text part links the same URL');
    await page.screenshot({ path: join(SCREENSHOTS, 'outbox-report.png'), fullPage: true });

    // Clicked inside the sandbox: it opens a new tab (the frame's base target), which downloads.
    // (Chromium reports the download on the page that opened the tab, and closes the tab.)
    const download = page.waitForEvent('download');
    await link.click();
    const zip = await readFile(await (await download).path());
    assert.equal(zip.subarray(0, 4).toString('latin1'), 'PK\x03\x04', 'a zip file');
    // And fetched as a mail client would: the same bytes behind the href.
    const fetched = await fetch(href);
    assert.equal(fetched.status, 200);
    assert.equal(
      Buffer.from(await fetched.arrayBuffer())
        .subarray(0, 4)
        .toString('latin1'),
      'PK\x03\x04',
    );
  });
});
