// The demo page, clicked through in headless Chromium (Debian's `chromium`, driven by
// playwright-core) against real `web` and `worker` processes: what a person would see.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { sharedRedisUrl } from '../harness/global.js';
import { makeImage } from '../harness/images.js';
import { freePort } from '../harness/ports.js';
import { createDatabase } from '../harness/postgres.js';
import { startProcess, type Proc } from '../harness/procfile.js';
import { startSmtp, type TestSmtp } from '../harness/smtp.js';
import { launchChromium, SCREENSHOTS } from './chromium.js';

// The few DOM shapes the in-page functions use: the tests compile without the DOM's types.
interface PageImage {
  complete: boolean;
  naturalWidth: number;
  onload: (() => void) | null;
  onerror: (() => void) | null;
}
declare const document: {
  querySelector(selector: string): { textContent: string | null } | null;
  documentElement: { scrollWidth: number; clientWidth: number };
};
declare const MutationObserver: new (callback: () => void) => {
  observe(target: unknown, options: Record<string, boolean>): void;
};
/** Exposed to the page by the test (page.exposeFunction). */
declare function recordState(text: string): void;

const ADMIN_PASSWORD = `browser-test-${randomUUID()}`;

/** What Chromium reported blocked by a page's CSP (src/http/security.ts): each a broken feature. */
const cspViolations: string[] = [];
function watchCsp(page: Page, name: string): void {
  page.on('console', (message) => {
    if (/Content Security Policy/i.test(message.text())) {
      cspViolations.push(`${name}: ${message.text()}`);
    }
  });
}

describe('the demo page in a browser', function () {
  this.timeout(120_000);
  let browser: Browser | undefined;
  let page: Page;
  let smtp: TestSmtp | undefined;
  const procs: Proc[] = [];
  let base = '';

  before(async function () {
    browser = await launchChromium();
    if (!browser) this.skip();
    await mkdir(SCREENSHOTS, { recursive: true });
    smtp = await startSmtp();
    // A slow mail provider, so the inline signup visibly waits for SMTP.
    smtp.delayMs = 300;
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    const dir = await mkdtemp(join(tmpdir(), 'offload-browser-'));
    const env = {
      REDIS_URL: sharedRedisUrl(),
      // As deployed: the signup stores its user (issue 22).
      DATABASE_URL: await createDatabase(),
      QUEUE_PREFIX: `b${randomUUID().slice(0, 8)}`,
      SMTP_URL: smtp.url,
      STORAGE_DIR: join(dir, 'storage'),
      PUBLIC_URL: base,
      PORT: String(port),
      // Several chunks, so the ID-card progress climbs in steps.
      REPORT_CHUNK_SIZE: '50',
      ADMIN_PASSWORD,
      LOG_LEVEL: 'warn',
    };
    const web = startProcess('web', { ...env, LOG_LEVEL: 'info' });
    const worker = startProcess('worker', { ...env, LOG_LEVEL: 'info' });
    procs.push(web, worker);
    await Promise.all([
      web.waitForLog((l) => l.msg === 'web listening'),
      worker.waitForLog((l) => l.msg === 'consuming queues'),
    ]);
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    watchCsp(page, 'demo page');
    await page.goto(`${base}/`);
  });

  after(async () => {
    await browser?.close();
    await Promise.all(procs.map((p) => p.stop('SIGKILL')));
    await smtp?.close();
  });

  /** Waits until `selector`'s text matches `pattern`; returns the text. */
  const textOf = async (selector: string, pattern: RegExp, timeout = 60_000) => {
    const matching = page.locator(selector).filter({ hasText: pattern });
    await matching.waitFor({ timeout });
    return (await matching.textContent()) ?? '';
  };
  /** A progress bar's value (its `value` attribute reflects the property). */
  const progressOf = async (box: string) =>
    Number(await page.locator(`${box} progress`).getAttribute('value'));
  const shot = (name: string) => page.screenshot({ path: join(SCREENSHOTS, name), fullPage: true });

  it('when the signup runs both ways, then both times show and the offloaded one is smaller', async () => {
    const polled: string[] = [];
    page.on('request', (req) => {
      if (/^\/jobs\/[^/]+$/.test(new URL(req.url()).pathname)) polled.push(req.url());
    });
    await page.click('#signup-form button');
    await textOf('#signup-offloaded [data-role=state]', /mail sent by a worker/);
    assert.deepEqual(polled, [], 'live from the event stream, no polling');
    await textOf(
      '#signup-offloaded [data-role=user]',
      /^user row [0-9a-f-]{36} · ann\+\w+@example\.com$/,
    );
    await textOf('#signup-offloaded [data-role=mail]', /^mail <[0-9a-f-]{36}@/);
    const inline = await textOf('#signup-inline [data-role=timing]', /\d+ ms · 201/);
    const offloaded = await textOf('#signup-offloaded [data-role=timing]', /\d+ ms · 202/);
    const ms = (text: string) => Number(/(\d+) ms/.exec(text)?.[1]);
    assert.ok(
      ms(offloaded) < ms(inline),
      `offloaded (${offloaded}) answered faster than inline (${inline})`,
    );
    assert.ok(ms(inline) >= 300, 'the inline signup waited for the slow SMTP server');
    await shot('signup.png');
  });

  it('when an image is uploaded, then the answer comes at once, the bar reaches 100 % and the thumbnails render', async () => {
    const image = await makeImage('jpeg', 800, 600);
    await page.setInputFiles('#thumbnail-form input[type=file]', {
      name: 'photo.jpg',
      mimeType: 'image/jpeg',
      buffer: image,
    });
    await page.click('#thumbnail-form button');
    await textOf('#thumbnail-result [data-role=timing]', /\d+ ms · 202/);
    await textOf('#thumbnail-result [data-role=state]', /^completed$/);
    assert.equal(await progressOf('#thumbnail-result'), 100);
    // Every thumbnail decoded in the browser (a broken link has naturalWidth 0).
    const images = page.locator('#thumbnail-result img');
    await images.first().waitFor();
    const widths = await images.evaluateAll((all: PageImage[]) =>
      Promise.all(
        all.map(
          (img) =>
            new Promise<number>((resolve) => {
              if (img.complete) resolve(img.naturalWidth);
              else img.onload = img.onerror = () => resolve(img.naturalWidth);
            }),
        ),
      ),
    );
    assert.deepEqual(widths, [128, 512, 800], 'decoded: 1024 is capped at the original 800');
    await shot('thumbnail.png');
  });

  it('when the file is not an image, then the refusal is shown plainly', async () => {
    await page.setInputFiles('#thumbnail-form input[type=file]', {
      name: 'notes.jpg',
      mimeType: 'image/jpeg',
      buffer: Buffer.from('these are not the bytes of a picture'),
    });
    await page.click('#thumbnail-form button');
    const error = await textOf('#thumbnail-result [data-role=state]', /^415 /);
    const shown = page.locator('#thumbnail-result [data-role=state]');
    assert.match((await shown.getAttribute('class')) ?? '', /\berror\b/, 'shown as an error');
    assert.match(error, /415 .+/);
    await shot('thumbnail-refused.png');
  });

  it('when ID cards are made, then the bar climbs with the cards to 100 % and the link downloads the zip', async () => {
    // Every text the state line shows, to see the count climb.
    const seen: string[] = [];
    await page.exposeFunction('recordState', (text: string) => seen.push(text));
    await page.evaluate(() => {
      const state = document.querySelector('#cards-result [data-role=state]');
      new MutationObserver(() => recordState(state?.textContent ?? '')).observe(state, {
        childList: true,
        characterData: true,
        subtree: true,
      });
    });
    await page.selectOption('#cards-form select', '200');
    await page.click('#cards-form button');
    await textOf('#cards-result [data-role=state]', /^completed$/, 90_000);
    assert.equal(await progressOf('#cards-result'), 100);
    const counts = seen
      .map((text) => /(\d+) of 200/.exec(text)?.[1])
      .filter(Boolean)
      .map(Number);
    assert.ok(
      counts.some((done) => done > 0 && done < 200),
      `a count between 0 and 200 was shown: ${JSON.stringify(seen)}`,
    );

    const link = page.locator('#cards-result a');
    assert.match((await link.textContent()) ?? '', /Download 200 ID cards/);
    const href = new URL((await link.getAttribute('href')) ?? '', base).href;
    await shot('cards.png');
    const zip = await fetch(href);
    assert.equal(zip.status, 200);
    const bytes = Buffer.from(await zip.arrayBuffer());
    assert.equal(bytes.subarray(0, 4).toString('latin1'), 'PK\x03\x04', 'a zip file');
  });

  it('when the browser has no EventSource, then the page polls the status and still shows the result', async () => {
    const context = await browser!.newContext();
    const plain = await context.newPage();
    try {
      await plain.addInitScript(() => {
        delete (globalThis as { EventSource?: unknown }).EventSource;
      });
      await plain.goto(`${base}/`);
      const polled: string[] = [];
      plain.on('request', (req) => {
        if (/^\/jobs\/[^/]+$/.test(new URL(req.url()).pathname)) polled.push(req.url());
      });
      await plain.click('#signup-form button');
      const done = plain.locator('#signup-offloaded [data-role=state]', {
        hasText: /mail sent by a worker/,
      });
      await done.waitFor({ timeout: 60_000 });
      assert.ok(polled.length > 0, 'the status URL was polled');
    } finally {
      await context.close();
    }
  });

  it('when an admin opens the queue dashboard with the password, then it lists the queues (and without it, 401)', async () => {
    const anonymous = await fetch(`${base}/admin/queues`);
    assert.equal(anonymous.status, 401);
    const context = await browser!.newContext({
      httpCredentials: { username: 'admin', password: ADMIN_PASSWORD },
      viewport: { width: 1280, height: 900 },
    });
    try {
      const admin = await context.newPage();
      watchCsp(admin, 'dashboard');
      await admin.goto(`${base}/admin/queues`);
      // bull-board's menu names every queue once its API answered.
      for (const queue of ['mail', 'media', 'reports']) {
        await admin.getByRole('link', { name: queue, exact: true }).first().waitFor();
      }
      await admin.screenshot({ path: join(SCREENSHOTS, 'dashboard.png') });
    } finally {
      await context.close();
    }
  });

  it('when the pages ran, then the Content-Security-Policy blocked nothing on them', () => {
    assert.deepEqual(cspViolations, []);
  });

  it('when seen on a phone, then the panels stack and nothing overflows sideways', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    const overflow = await page.evaluate(
      () => document.documentElement.scrollWidth - document.documentElement.clientWidth,
    );
    assert.ok(overflow <= 0, `no horizontal scrolling (${overflow} px too wide)`);
    await shot('phone.png');
  });
});
