import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { inflateSync } from 'node:zlib';
import { getDocument } from 'pdfjs-dist/legacy/build/pdf.mjs';
import QRCode from 'qrcode';
import { CARD_SIZE, renderCard, type CardOptions } from '../../src/reports/card.js';
import type { Student } from '../../src/reports/roster.js';

const OPTIONS: CardOptions = {
  title: 'Lincoln High School · Student ID',
  issued: new Date('2026-09-01T00:00:00Z'),
  code: 'https://school.example.edu/verify/S00042?k=7f3a9c',
};
const ADA: Student = { id: 'S00042', name: 'Ada Lovelace', class: '7B', email: 'ada@example.edu' };

// pdfjs reads the standard fonts' metrics from its own copies (else it warns and guesses).
const standardFontDataUrl = `${join(dirname(createRequire(import.meta.url).resolve('pdfjs-dist/package.json')), 'standard_fonts')}/`;

interface Line {
  text: string;
  x: number;
  width: number;
  size: number;
}

interface PdfInfo {
  Title?: string;
  Author?: string;
  CreationDate?: string;
}

/** The PDF read back with pdfjs: its one page's size, its text lines and its info. */
async function read(pdf: Buffer) {
  const document = await getDocument({ data: new Uint8Array(pdf), standardFontDataUrl }).promise;
  try {
    assert.equal(document.numPages, 1);
    const page = await document.getPage(1);
    const lines: (Line & { y: number })[] = [];
    for (const item of (await page.getTextContent()).items) {
      if (!('str' in item) || item.str === '') continue;
      const y = item.transform[5] as number;
      const last = lines.at(-1);
      // A line mixing scripts is drawn as runs, one per font: read it back as one line.
      if (last && Math.abs(last.y - y) < 0.01) {
        last.text += item.str;
        last.width = (item.transform[4] as number) + item.width - last.x;
        continue;
      }
      lines.push({
        text: item.str,
        x: item.transform[4] as number,
        y,
        width: item.width,
        size: item.transform[0] as number,
      });
    }
    const info = (await document.getMetadata()).info as PdfInfo;
    return { view: page.view, lines: lines.filter((line) => line.text.trim() !== ''), info };
  } finally {
    await document.destroy();
  }
}

const texts = (lines: Line[]) => lines.map((line) => line.text);

/** The rectangles (`x y w h re`) of the PDF's content streams, inflated from pdfkit's Flate. */
function rectangles(pdf: Buffer): number[][] {
  const raw = pdf.toString('latin1');
  const rects: number[][] = [];
  for (const [, body = ''] of raw.matchAll(/stream\n([\s\S]*?)\nendstream/g)) {
    const content = inflateSync(Buffer.from(body, 'latin1')).toString('latin1');
    for (const m of content.matchAll(/(\S+) (\S+) (\S+) (\S+) re\b/g)) {
      rects.push(m.slice(1, 5).map(Number));
    }
  }
  return rects;
}

describe('renderCard (one ID card as a PDF)', () => {
  it('when a card is rendered, then its text reads back: title, name, id, class and issue date', async () => {
    const { lines } = await read(await renderCard(ADA, OPTIONS));
    assert.deepEqual(texts(lines), [
      'Lincoln High School · Student ID',
      'Ada Lovelace',
      'ID',
      'S00042',
      'CLASS',
      '7B',
      'ISSUED',
      '2026-09-01',
    ]);
    // A short name gets the full size.
    assert.equal(lines[1]?.size, 16);
  });

  it('when a card is rendered, then it is one page of ID-1 size (85.6 × 54 mm) with its info set', async () => {
    const { view, info } = await read(await renderCard(ADA, OPTIONS));
    assert.deepEqual(view.slice(0, 2), [0, 0]);
    assert.ok(Math.abs((view[2] ?? 0) - 242.65) < 0.01, `width ${view[2]}`);
    assert.ok(Math.abs((view[3] ?? 0) - 153.07) < 0.01, `height ${view[3]}`);
    assert.deepEqual(
      [CARD_SIZE.width.toFixed(2), CARD_SIZE.height.toFixed(2)],
      ['242.65', '153.07'],
    );
    assert.equal(info.Title, 'Lincoln High School · Student ID: Ada Lovelace (S00042)');
    assert.equal(info.Author, 'Lincoln High School · Student ID');
    assert.match(String(info.CreationDate), /^D:20260901000000Z/);
  });

  it('when the same card is rendered twice, then the bytes are the same; another student, then not', async () => {
    const first = await renderCard(ADA, OPTIONS);
    assert.ok(
      first.equals(await renderCard(ADA, { ...OPTIONS, issued: new Date(OPTIONS.issued) })),
    );
    assert.ok(!first.equals(await renderCard({ ...ADA, id: 'S00043' }, OPTIONS)));
    // No clock leaks in: the only date in the file is the issue date.
    const dates = first.toString('latin1').match(/D:\d{14}/g);
    assert.deepEqual([...new Set(dates)], ['D:20260901000000']);
  });

  it('when the student has no class, then the card has no class line', async () => {
    const { lines } = await read(await renderCard({ id: 'S1', name: 'Bo' }, OPTIONS));
    assert.deepEqual(texts(lines).slice(1), ['Bo', 'ID', 'S1', 'ISSUED', '2026-09-01']);
  });

  it('when the name is long, then it is shrunk onto one line; when very long, then also cut with "…", within the card', async () => {
    const long = 'Maria Guadalupe Fernández de la Concepción';
    const { lines } = await read(await renderCard({ ...ADA, name: long }, OPTIONS));
    const name = lines[1];
    assert.equal(name?.text, long);
    assert.ok(name.size < 16 && name.size >= 7, `size ${name.size}`);
    assert.ok(name.x + name.width <= CARD_SIZE.width - 10 + 0.01);

    // The longest name a roster allows.
    const veryLong = `${'Wolfgang Amadeus Johannes Chrysostomus Theophilus '.repeat(2).trim()}s`;
    assert.equal(veryLong.length, 100);
    const cut = (
      await read(await renderCard({ ...ADA, name: veryLong, class: 'x'.repeat(50) }, OPTIONS))
    ).lines;
    const [title, cutName] = cut;
    assert.equal(title?.text, OPTIONS.title);
    assert.ok(cutName);
    assert.ok(cutName.text.endsWith('…'), cutName.text);
    assert.ok(veryLong.startsWith(cutName.text.slice(0, -1)));
    assert.ok(cutName.text.length > 50, cutName.text);
    assert.equal(cutName.size, 7);
    for (const line of cut) {
      assert.ok(
        line.x >= 10 && line.x + line.width <= CARD_SIZE.width - 10 + 0.01,
        `${line.text} overflows`,
      );
    }
  });

  it('when names and titles are in Latin with diacritics, Greek, Cyrillic, Chinese or Japanese, then each card reads back exactly, and stays small', async () => {
    const classes: [title: string, name: string, className: string][] = [
      ['Liceo Español · Carné', 'Łukasz Dvořák-Zoë Şahin Søren Åsa Ærøskøbing Ţîrgu Ğül', '5ª B'],
      ['Γυμνάσιο Αθηνών', 'Αλέξανδρος Παπαδόπουλος', 'Β2'],
      ['Школа № 57 — Ученический билет', 'Ёлкина Анастасия Юрьевна', '7Б'],
      ['北京市第一中学 学生证', '张伟 李娜 欧阳明', '初二（3）班'],
      ['東京都立高校 生徒証', 'さくら 髙橋 ヤマダ・タロウ', '2年B組'],
    ];
    for (const [title, name, className] of classes) {
      const pdf = await renderCard(
        { id: 'S1', name, class: className },
        { ...OPTIONS, title, code: 'S1' },
      );
      const { lines } = await read(pdf);
      assert.deepEqual(texts(lines), [
        title,
        name,
        'ID',
        'S1',
        'CLASS',
        className,
        'ISSUED',
        '2026-09-01',
      ]);
      assert.ok(!pdf.toString('latin1').includes('/Helvetica'), 'no standard font');
      // Subsets: Noto Sans (0.6 MB whole) adds a few kB. A CJK subset keeps the font's shared
      // subroutines (fontkit does not prune them): about 90 kB, where the whole font is 8 MB.
      const cjk = /\p{Script=Han}|\p{Script=Hiragana}/u.test(name);
      assert.ok(pdf.length < (cjk ? 120_000 : 16_000), `${title}: ${pdf.length} bytes`);
    }
  });

  it('when a card is rendered, then the QR code is vector squares exactly matching the code’s modules', async () => {
    const { modules } = QRCode.create(OPTIONS.code);
    const rects = rectangles(await renderCard(ADA, OPTIONS));
    // All but the header band: the QR code's runs of dark modules, one module high.
    const qr = rects.filter(([, , w = 0]) => w < CARD_SIZE.width / 2);
    assert.ok(qr.length > 100, `${qr.length} rectangles`);
    const step = qr[0]?.[3] ?? 0;
    const left = Math.min(...qr.map(([x = 0]) => x));
    const top = Math.min(...qr.map(([, y = 0]) => y));
    const drawn = new Set<string>();
    for (const [x = 0, y = 0, w = 0, h = 0] of qr) {
      assert.ok(Math.abs(h - step) < 1e-3);
      const row = Math.round((y - top) / step);
      const col = Math.round((x - left) / step);
      for (let c = col; c < col + Math.round(w / step); c++) drawn.add(`${row},${c}`);
    }
    const dark = new Set<string>();
    for (let row = 0; row < modules.size; row++) {
      for (let col = 0; col < modules.size; col++)
        if (modules.get(row, col)) dark.add(`${row},${col}`);
    }
    assert.deepEqual(drawn, dark);
    // Square, inside the card, with room for a quiet zone.
    assert.ok(left + step * modules.size <= CARD_SIZE.width - 4 * step);
    assert.ok(top + step * modules.size <= CARD_SIZE.height - 4 * step);
  });

  it('when the code is too long for a QR code, then the promise rejects', async () => {
    await assert.rejects(renderCard(ADA, { ...OPTIONS, code: 'x'.repeat(8000) }), /too big/);
  });
});
