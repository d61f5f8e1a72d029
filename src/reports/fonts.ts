// The fonts ID cards are drawn with, and what they can draw. Noto Sans (@embedpdf/fonts-latin,
// TTF) covers Latin with its diacritics, Greek and Cyrillic. Noto Sans SC (@embedpdf/fonts-sc,
// OTF, 31k glyphs) covers Chinese (simplified and most traditional hanzi) and Japanese kana and
// most kanji, drawn in Chinese glyph forms. Anything else (Hangul, Hebrew, Arabic, Indic
// scripts, …) has no font here, and rosters naming it are refused at upload (roster.ts).
// pdfkit embeds only the glyphs a card uses (a subset), so a card stays a few kB per font.
// The cost is install size: the CJK package is 42 MB (five weights; two are used).
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as fontkit from 'fontkit';

export type Weight = 'Regular' | 'Bold';

/** A font to draw a run of text with, parsed once per thread (parsing costs more than a card). */
export interface FontFace {
  /** Unique per file and weight: pdfkit registers each once per document. */
  key: string;
  font: fontkit.Font;
}

const require = createRequire(import.meta.url);
// Each package's folder, found through a file its exports allow.
const latinDir = join(dirname(require.resolve('@embedpdf/fonts-latin')), '..', 'fonts');
const cjkDir = join(dirname(require.resolve('@embedpdf/fonts-sc')), '..', 'fonts');

const latinFiles: Record<Weight, string> = {
  Regular: join(latinDir, 'NotoSans-Regular.ttf'),
  Bold: join(latinDir, 'NotoSans-Bold.ttf'),
};

const cjkFiles: Record<Weight, string> = {
  Regular: join(cjkDir, 'NotoSansHans-Regular.otf'),
  Bold: join(cjkDir, 'NotoSansHans-Bold.otf'),
};

let latin: Record<Weight, fontkit.Font> | undefined;
/** The Latin, Greek and Cyrillic font, read once per thread. */
function latinFont() {
  latin ??= { Regular: parse(latinFiles.Regular), Bold: parse(latinFiles.Bold) };
  return latin;
}

let cjk: Record<Weight, fontkit.Font> | undefined;
/** The CJK font (8 MB a weight), read only when a card needs it: most classes never do. */
function cjkFont() {
  cjk ??= { Regular: parse(cjkFiles.Regular), Bold: parse(cjkFiles.Bold) };
  return cjk;
}

const parse = (file: string) => fontkit.create(readFileSync(file)) as fontkit.Font;

/** The font to draw `char` with, or undefined when none here has it. */
export function faceFor(char: string, weight: Weight): FontFace | undefined {
  const cp = char.codePointAt(0) ?? 0;
  // Both weights of a font cover the same characters.
  const latin = latinFont();
  if (latin.Regular.hasGlyphForCodePoint(cp))
    return { key: `latin-${weight}`, font: latin[weight] };
  // Only characters Noto Sans lacks reach this: CJK, and scripts neither font has.
  const cjk = cjkFont();
  if (cjk.Regular.hasGlyphForCodePoint(cp)) return { key: `cjk-${weight}`, font: cjk[weight] };
  return undefined;
}

/** Format and bidi controls (U+200E, U+202E, U+2066…, zero-width joiners): never printed. */
const FORMAT = /\p{Cf}/u;

/**
 * The first character of `text` the cards cannot draw, described for a person ("U+05D0, a
 * letter of the Hebrew script"), or undefined when all can be drawn. Text is taken in NFC, as
 * the cards draw it.
 */
export function undrawable(text: string): string | undefined {
  for (const char of text.normalize('NFC')) {
    if (FORMAT.test(char)) return `${codePoint(char)} is an invisible formatting character`;
    if (/\s/u.test(char) && char !== ' ') return `${codePoint(char)} is a space other than " "`;
    if (char === ' ' || faceFor(char, 'Regular')) continue;
    const script = SCRIPTS.find((name) => new RegExp(`\\p{Script=${name}}`, 'u').test(char));
    return `"${char}" (${codePoint(char)}${script ? `, ${script.replace(/_/g, ' ')} script` : ''}) cannot be printed on the cards, which support Latin, Greek, Cyrillic, Chinese and Japanese`;
  }
  return undefined;
}

const codePoint = (char: string) =>
  `U+${(char.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0')}`;

/** Scripts named in refusals; a character of another one is named by its code point only. */
const SCRIPTS = [
  'Hebrew',
  'Arabic',
  'Syriac',
  'Thaana',
  'Hangul',
  'Devanagari',
  'Bengali',
  'Gurmukhi',
  'Gujarati',
  'Tamil',
  'Telugu',
  'Kannada',
  'Malayalam',
  'Sinhala',
  'Thai',
  'Lao',
  'Tibetan',
  'Myanmar',
  'Georgian',
  'Armenian',
  'Ethiopic',
  'Khmer',
  'Mongolian',
  'Cherokee',
  'Canadian_Aboriginal',
  'Han',
  'Hiragana',
  'Katakana',
  'Bopomofo',
  'Latin',
  'Greek',
  'Cyrillic',
];
