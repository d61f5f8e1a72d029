// One student ID card as a one-page PDF of ID-1 size (a bank card). Lean on purpose, since a
// class renders thousands: only the glyphs used are embedded (font subsets), no images, the QR
// code drawn as vector squares. Text in Latin, Greek, Cyrillic, Chinese and Japanese is drawn
// in Noto fonts (fonts.ts), each run of text in the font that has it.
import PDFDocument from 'pdfkit';
import QRCode from 'qrcode';
import { faceFor, type FontFace, type Weight } from './fonts.js';
import type { Student } from './roster.js';

export interface CardOptions {
  title: string;
  issued: Date;
  /** encoded in the QR code */
  code: string;
}

const MM = 72 / 25.4;
/** ID-1 (ISO/IEC 7810), in points: 85.6 × 54 mm. */
export const CARD_SIZE = { width: 85.6 * MM, height: 54 * MM };

const PAD = 10;
const BAND = 30;
const QR_SIZE = 62;
// The QR code's quiet zone (4 modules, about 9 pt here) is the card's white around it.
const QR_GAP = 10;
const FULL_WIDTH = CARD_SIZE.width - 2 * PAD;
const FIELD_WIDTH = FULL_WIDTH - QR_SIZE - QR_GAP;

interface LineStyle {
  weight: Weight;
  color: string;
  size: number;
  /** The smallest size to shrink to; past it the text is cut short with "…". */
  min: number;
  width: number;
}

const BOLD = 'Bold';
const INK = '#111111';
const MUTED = '#667085';
const TITLE: LineStyle = { weight: BOLD, color: '#ffffff', size: 11, min: 6, width: FULL_WIDTH };
const NAME: LineStyle = { weight: BOLD, color: INK, size: 16, min: 7, width: FULL_WIDTH };
const LABEL: LineStyle = { weight: 'Regular', color: MUTED, size: 6, min: 6, width: FIELD_WIDTH };
const VALUE: LineStyle = { weight: 'Regular', color: INK, size: 9.5, min: 6, width: FIELD_WIDTH };

/** Renders the card; the same student and options give the same bytes. */
export async function renderCard(student: Student, options: CardOptions): Promise<Buffer> {
  const { width, height } = CARD_SIZE;
  const doc = new PDFDocument({
    size: [width, height],
    margin: 0,
    // pdfkit derives the file ID from the info, so fixed info (no "now") gives fixed bytes.
    info: {
      Title: `${options.title}: ${student.name} (${student.id})`,
      Author: options.title,
      CreationDate: options.issued,
    },
  });
  const pdf = new Promise<Buffer>((resolve, reject) => {
    const chunks: Uint8Array[] = [];
    doc.on('data', (chunk: Uint8Array) => chunks.push(chunk));
    doc.on('end', () => {
      resolve(Buffer.concat(chunks));
    });
    doc.on('error', reject);
  });

  // Positions are baselines, so shrunk text stays on its line.
  doc.rect(0, 0, width, BAND).fill('#1f3a5f');
  oneLine(doc, options.title, PAD, 19, TITLE);
  oneLine(doc, student.name, PAD, 55, NAME);
  const fields: [string, string][] = [['ID', student.id]];
  if (student.class !== undefined) fields.push(['CLASS', student.class]);
  fields.push(['ISSUED', options.issued.toISOString().slice(0, 10)]);
  fields.forEach(([label, value], i) => {
    oneLine(doc, label, PAD, 72 + i * 22, LABEL);
    oneLine(doc, value, PAD, 82 + i * 22, VALUE);
  });
  drawQr(doc, options.code, width - PAD - QR_SIZE, height - PAD - QR_SIZE, QR_SIZE);
  doc.end();
  return pdf;
}

/** Writes `text` on one line with its baseline at `y`, shrunk or cut to fit `width`. */
function oneLine(doc: PDFKit.PDFDocument, text: string, x: number, y: number, style: LineStyle) {
  let line = text.normalize('NFC');
  doc.fillColor(style.color);
  let size = style.size;
  const natural = widthOf(doc, line, style.weight, size);
  if (natural > style.width) {
    // Width is proportional to size; round down so the rounded size still fits.
    size = Math.max(style.min, Math.floor(((style.size * style.width) / natural) * 10) / 10);
    if (widthOf(doc, line, style.weight, size) > style.width) {
      let cut = Array.from(line);
      while (cut.length > 0 && widthOf(doc, `${cut.join('')}…`, style.weight, size) > style.width) {
        cut = cut.slice(0, -1);
      }
      line = `${cut.join('').trimEnd()}…`;
    }
  }
  let at = x;
  for (const run of runs(line, style.weight)) {
    use(doc, run.face).fontSize(size);
    doc.text(run.text, at, y, { lineBreak: false, baseline: 'alphabetic' });
    at += doc.widthOfString(run.text);
  }
}

interface Run {
  face: FontFace;
  text: string;
}

/**
 * `text` cut into runs that one font draws. Rosters are checked at upload (fonts.undrawable),
 * so every character has a font; one that does not (a job from before that check) is drawn
 * with Noto Sans, as its empty box.
 */
function runs(text: string, weight: Weight): Run[] {
  const out: Run[] = [];
  const fallback = faceFor('?', weight);
  for (const char of text) {
    const face = faceFor(char, weight) ?? fallback;
    if (!face) continue;
    const last = out.at(-1);
    if (last && (last.face.key === face.key || char === ' ')) last.text += char;
    else out.push({ face, text: char });
  }
  return out;
}

function widthOf(doc: PDFKit.PDFDocument, text: string, weight: Weight, size: number): number {
  let width = 0;
  for (const run of runs(text, weight))
    width += use(doc, run.face).fontSize(size).widthOfString(run.text);
  return width;
}

/** Selects `face`, registering it with the document the first time (embedded once, as a subset). */
function use(doc: PDFKit.PDFDocument, face: FontFace): PDFKit.PDFDocument {
  const registered = registeredFaces.get(doc) ?? new Set<string>();
  registeredFaces.set(doc, registered);
  if (!registered.has(face.key)) {
    // pdfkit (0.20, font_factory.js) takes a parsed fontkit font as well as bytes, which its
    // types do not say; parsing the font again for each card would cost more than the card.
    (doc.registerFont as unknown as RegisterParsed).call(doc, face.key, face.font);
    registered.add(face.key);
  }
  return doc.font(face.key);
}

type RegisterParsed = (name: string, src: FontFace['font']) => PDFKit.PDFDocument;
const registeredFaces = new WeakMap<PDFKit.PDFDocument, Set<string>>();

/** The QR code's dark modules as filled squares, one rectangle per horizontal run. */
function drawQr(doc: PDFKit.PDFDocument, code: string, x: number, y: number, size: number) {
  const { modules } = QRCode.create(code);
  const step = size / modules.size;
  for (let row = 0; row < modules.size; row++) {
    for (let col = 0; col < modules.size;) {
      if (!modules.get(row, col)) {
        col++;
        continue;
      }
      const start = col;
      while (col < modules.size && modules.get(row, col)) col++;
      doc.rect(x + start * step, y + row * step, (col - start) * step, step);
    }
  }
  doc.fill('#000000');
}
