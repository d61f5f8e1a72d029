// One student ID card as a one-page PDF of ID-1 size (a bank card). Lean on purpose, since a
// class renders thousands: a standard font (nothing embedded), no images, the QR code drawn as
// vector squares.
import PDFDocument from 'pdfkit';
import QRCode from 'qrcode';
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
const BOLD = 'Helvetica-Bold';
const INK = '#111111';
const MUTED = '#667085';
const TITLE = { font: BOLD, color: '#ffffff', size: 11, min: 6, width: FULL_WIDTH };
const NAME = { font: BOLD, color: INK, size: 16, min: 7, width: FULL_WIDTH };
const LABEL = { font: 'Helvetica', color: MUTED, size: 6, min: 6, width: FIELD_WIDTH };
const VALUE = { font: 'Helvetica', color: INK, size: 9.5, min: 6, width: FIELD_WIDTH };
/** Renders the card; the same student and options give the same bytes. */
export async function renderCard(student, options) {
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
    const pdf = new Promise((resolve, reject) => {
        const chunks = [];
        doc.on('data', (chunk) => chunks.push(chunk));
        doc.on('end', () => {
            resolve(Buffer.concat(chunks));
        });
        doc.on('error', reject);
    });
    // Positions are baselines, so shrunk text stays on its line.
    doc.rect(0, 0, width, BAND).fill('#1f3a5f');
    oneLine(doc, options.title, PAD, 19, TITLE);
    oneLine(doc, student.name, PAD, 55, NAME);
    const fields = [['ID', student.id]];
    if (student.class !== undefined)
        fields.push(['CLASS', student.class]);
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
function oneLine(doc, text, x, y, style) {
    let line = winAnsi(text);
    doc.font(style.font).fontSize(style.size).fillColor(style.color);
    const natural = doc.widthOfString(line);
    if (natural > style.width) {
        // Width is proportional to size; round down so the rounded size still fits.
        doc.fontSize(Math.max(style.min, Math.floor(((style.size * style.width) / natural) * 10) / 10));
        if (doc.widthOfString(line) > style.width) {
            let cut = line;
            while (cut.length > 0 && doc.widthOfString(`${cut}…`) > style.width)
                cut = cut.slice(0, -1);
            line = `${cut.trimEnd()}…`;
        }
    }
    doc.text(line, x, y, { lineBreak: false, baseline: 'alphabetic' });
}
// pdfkit writes standard-font text as WinAnsi bytes, and a character outside it garbles the
// rest of the line. So letters outside it lose their accents (č → c), a few are mapped, and
// anything else (other scripts) shows as "?".
const WIN_ANSI_EXTRA = new Set('€‚ƒ„…†‡ˆ‰Š‹ŒŽ‘’“”•–—˜™š›œžŸ');
// Letters that do not decompose into a base letter and a mark, and their look-alikes.
const FOLD_FROM = 'ŁłĐđĦħıŦŧƏəʻʼ‐‑−';
const FOLD_TO = 'LlDdHhiTtEe‘’---';
function inWinAnsi(char) {
    const code = char.codePointAt(0) ?? 0;
    return ((code >= 0x20 && code <= 0x7e) || (code >= 0xa0 && code <= 0xff) || WIN_ANSI_EXTRA.has(char));
}
function winAnsi(text) {
    let out = '';
    for (const char of text.normalize('NFC')) {
        if (inWinAnsi(char)) {
            out += char;
            continue;
        }
        const base = char.normalize('NFD').replace(/\p{M}/gu, '');
        if (base !== '' && Array.from(base).every(inWinAnsi))
            out += base;
        else
            out += FOLD_TO[FOLD_FROM.indexOf(char)] ?? '?';
    }
    return out;
}
/** The QR code's dark modules as filled squares, one rectangle per horizontal run. */
function drawQr(doc, code, x, y, size) {
    const { modules } = QRCode.create(code);
    const step = size / modules.size;
    for (let row = 0; row < modules.size; row++) {
        for (let col = 0; col < modules.size;) {
            if (!modules.get(row, col)) {
                col++;
                continue;
            }
            const start = col;
            while (col < modules.size && modules.get(row, col))
                col++;
            doc.rect(x + start * step, y + row * step, (col - start) * step, step);
        }
    }
    doc.fill('#000000');
}
