// The accepted image formats, told apart by their first bytes, and one structure walker each.
// A walker checks a file's layout as it streams past, reports the image's size as soon as its
// header gives it, and returns at the format's end marker: a file that stops before that is
// truncated. It decodes no pixels; that is the worker's job (sharp).
import type { Need, Walker } from './walk.js';

export type ImageFormat = 'jpeg' | 'png' | 'gif' | 'webp' | 'avif';

export const FORMAT_NAMES: Record<ImageFormat, string> = {
  jpeg: 'JPEG',
  png: 'PNG',
  gif: 'GIF',
  webp: 'WebP',
  avif: 'AVIF',
};

/** Why a file was refused: the route turns each into its HTTP status. */
export type ImageProblem = 'empty' | 'unsupported' | 'malformed' | 'truncated' | 'too-many-pixels';

export class ImageError extends Error {
  constructor(
    readonly problem: ImageProblem,
    message: string,
  ) {
    super(message);
    this.name = 'ImageError';
  }
}

/** Bytes `sniff` needs to tell every accepted format apart. */
export const SNIFF_BYTES = 12;

const startsWith = (head: Buffer, bytes: number[] | string, at = 0) =>
  head
    .subarray(at, at + bytes.length)
    .equals(typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : Buffer.from(bytes));

/** The format the file's first bytes announce, or undefined for anything else. */
export function sniff(head: Buffer): ImageFormat | undefined {
  if (startsWith(head, [0xff, 0xd8, 0xff])) return 'jpeg';
  if (startsWith(head, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return 'png';
  if (startsWith(head, 'GIF87a') || startsWith(head, 'GIF89a')) return 'gif';
  if (startsWith(head, 'RIFF') && startsWith(head, 'WEBP', 8)) return 'webp';
  // ISO base media (HEIF, AVIF, MP4...): the walker reads the brands and keeps AVIF only.
  if (startsWith(head, 'ftyp', 4)) return 'avif';
  return undefined;
}

/** Called with the size of the canvas the decoder will allocate, as soon as it is known. */
type OnSize = (width: number, height: number) => void;

export function walkerFor(format: ImageFormat, onSize: OnSize): Walker {
  switch (format) {
    case 'jpeg':
      return jpeg(onSize);
    case 'png':
      return png(onSize);
    case 'gif':
      return gif(onSize);
    case 'webp':
      return webp(onSize);
    case 'avif':
      return avif(onSize);
  }
}

// Small typed steps for walkers (the driver resumes a yield with what was asked for).
function* read(bytes: number): Generator<Need, Buffer, Buffer | number | null> {
  return (yield { read: bytes }) as Buffer;
}
function* readOrEnd(bytes: number): Generator<Need, Buffer | null, Buffer | number | null> {
  return (yield { read: bytes, orEnd: true }) as Buffer | null;
}
function* skip(bytes: number): Generator<Need, void, Buffer | number | null> {
  yield { skip: bytes };
}
function* nextMarker(): Generator<Need, number, Buffer | number | null> {
  return (yield { marker: true }) as number;
}

const malformed = (format: ImageFormat, why: string) =>
  new ImageError('malformed', `not a valid ${FORMAT_NAMES[format]}: ${why}`);

/** Markers: SOI, then length-prefixed segments; after each scan (SOS) entropy-coded data. */
function* jpeg(onSize: OnSize): Walker {
  yield* skip(2); // FF D8, checked by sniff
  let code = -1; // a marker code met at the end of entropy-coded data, not read yet
  for (;;) {
    if (code === -1) {
      const [ff, c] = yield* read(2);
      if (ff !== 0xff || c === undefined) throw malformed('jpeg', 'expected a marker');
      code = c;
      while (code === 0xff) code = (yield* read(1))[0] ?? 0; // fill bytes
    }
    if (code === 0xd9) return; // EOI
    if (code === 0x01 || (code >= 0xd0 && code <= 0xd8)) {
      code = -1; // markers without a segment
      continue;
    }
    const length = (yield* read(2)).readUInt16BE(0);
    if (length < 2) throw malformed('jpeg', 'segment length below 2');
    // SOF0..SOF15, except DHT (C4), JPG (C8) and DAC (CC): precision, height, width, ...
    if (code >= 0xc0 && code <= 0xcf && code !== 0xc4 && code !== 0xc8 && code !== 0xcc) {
      const frame = yield* read(length - 2);
      if (frame.length < 5) throw malformed('jpeg', 'short frame header');
      onSize(frame.readUInt16BE(3), frame.readUInt16BE(1));
    } else {
      yield* skip(length - 2);
    }
    code = code === 0xda ? yield* nextMarker() : -1; // SOS: a scan follows
  }
}

/** Signature, then chunks (length, type, data, CRC) from IHDR to IEND. */
function* png(onSize: OnSize): Walker {
  yield* skip(8);
  let first = true;
  for (;;) {
    const header = yield* read(8);
    const length = header.readUInt32BE(0);
    const type = header.toString('latin1', 4, 8);
    if (length > 0x7fffffff) throw malformed('png', 'chunk length out of range');
    if (first !== (type === 'IHDR')) throw malformed('png', 'IHDR must come first, once');
    if (first) {
      if (length !== 13) throw malformed('png', 'bad IHDR length');
      const ihdr = yield* read(13);
      onSize(ihdr.readUInt32BE(0), ihdr.readUInt32BE(4));
      yield* skip(4);
      first = false;
      continue;
    }
    yield* skip(length + 4);
    if (type === 'IEND') return;
  }
}

/** Header, screen descriptor, then extension and image blocks up to the trailer (0x3B). */
function* gif(onSize: OnSize): Walker {
  const header = yield* read(13);
  let width = header.readUInt16LE(6);
  let height = header.readUInt16LE(8);
  const flags = header[10] ?? 0;
  if (flags & 0x80) yield* skip(3 << ((flags & 7) + 1)); // global colour table
  let sized = false;
  for (;;) {
    const [block] = yield* read(1);
    if (block === 0x3b) {
      if (!sized) throw malformed('gif', 'no image in the file');
      return;
    }
    if (block === 0x21) {
      yield* skip(1); // extension label
    } else if (block === 0x2c) {
      const image = yield* read(9);
      // A frame may reach past the logical screen; decoders then grow the canvas.
      width = Math.max(width, image.readUInt16LE(0) + image.readUInt16LE(4));
      height = Math.max(height, image.readUInt16LE(2) + image.readUInt16LE(6));
      onSize(width, height);
      sized = true;
      const imageFlags = image[8] ?? 0;
      if (imageFlags & 0x80) yield* skip(3 << ((imageFlags & 7) + 1)); // local colour table
      yield* skip(1); // LZW minimum code size
    } else {
      throw malformed('gif', `unknown block 0x${(block ?? 0).toString(16)}`);
    }
    for (;;) {
      const [size] = yield* read(1); // data sub-blocks, ended by an empty one
      if (!size) break;
      yield* skip(size);
    }
  }
}

/** RIFF container: the first chunk (VP8, VP8L or VP8X) gives the canvas size. */
function* webp(onSize: OnSize): Walker {
  const riff = yield* read(12);
  let left = riff.readUInt32LE(4) - 4; // bytes of chunks after "WEBP"
  let first = true;
  while (left > 0) {
    const header = yield* read(8);
    const type = header.toString('latin1', 0, 4);
    const size = header.readUInt32LE(4);
    const padded = size + (size & 1);
    if (8 + padded > left) throw malformed('webp', 'chunk runs past the RIFF size');
    left -= 8 + padded;
    if (!first) {
      yield* skip(padded);
      continue;
    }
    first = false;
    if (type === 'VP8X' && size >= 10) {
      const x = yield* read(10);
      onSize(x.readUIntLE(4, 3) + 1, x.readUIntLE(7, 3) + 1);
      yield* skip(padded - 10);
    } else if (type === 'VP8 ' && size >= 10) {
      const frame = yield* read(10);
      if (!startsWith(frame, [0x9d, 0x01, 0x2a], 3)) throw malformed('webp', 'bad VP8 start code');
      onSize(frame.readUInt16LE(6) & 0x3fff, frame.readUInt16LE(8) & 0x3fff);
      yield* skip(padded - 10);
    } else if (type === 'VP8L' && size >= 5) {
      const lossless = yield* read(5);
      if (lossless[0] !== 0x2f) throw malformed('webp', 'bad VP8L signature');
      const bits = lossless.readUInt32LE(1);
      onSize((bits & 0x3fff) + 1, ((bits >>> 14) & 0x3fff) + 1);
      yield* skip(padded - 5);
    } else {
      throw malformed('webp', `unexpected first chunk ${JSON.stringify(type)}`);
    }
  }
  if (first) throw malformed('webp', 'no image chunk');
}

/** The most of a `meta` box we read to find the image size (item info is small). */
const MAX_META_BYTES = 1 << 20;

/** ISO base media boxes: `ftyp` must name AVIF; `meta` holds the size (`ispe`). */
function* avif(onSize: OnSize): Walker {
  let first = true;
  let sized = false;
  for (;;) {
    const header = yield* readOrEnd(8);
    if (!header) break; // the file ended where a box could start: complete
    const type = header.toString('latin1', 4, 8);
    let size = header.readUInt32BE(0);
    let headerSize = 8;
    if (size === 1) {
      const large = (yield* read(8)).readBigUInt64BE(0);
      if (large > BigInt(Number.MAX_SAFE_INTEGER)) throw malformed('avif', 'box too large');
      size = Number(large);
      headerSize = 16;
    }
    if (size !== 0 && size < headerSize) throw malformed('avif', 'box smaller than its header');
    const body = size - headerSize;
    if (first) {
      if (type !== 'ftyp' || size === 0 || body < 8 || body > 4096) {
        throw malformed('avif', 'bad ftyp box');
      }
      const ftyp = yield* read(body);
      const brands = [ftyp.subarray(0, 4)];
      for (let at = 8; at + 4 <= ftyp.length; at += 4) brands.push(ftyp.subarray(at, at + 4));
      const names = brands.map((brand) => brand.toString('latin1'));
      if (!names.includes('avif') && !names.includes('avis')) {
        throw new ImageError(
          'unsupported',
          `an ISO media file of brand ${JSON.stringify(names[0])} (HEIC, MP4...) is not AVIF`,
        );
      }
      first = false;
    } else if (type === 'meta' && size !== 0) {
      if (body > MAX_META_BYTES) throw malformed('avif', 'meta box too large');
      const largest = largestSpatialExtent(yield* read(body));
      if (!largest) throw malformed('avif', 'no image size (ispe) in the meta box');
      onSize(largest.width, largest.height);
      sized = true;
    } else if (size === 0) {
      // The last box runs to the end of the file: nothing more to check.
      checkSized(sized);
      return;
    } else {
      yield* skip(body);
    }
  }
  checkSized(sized);
}

function checkSized(sized: boolean): void {
  if (!sized) throw malformed('avif', 'no meta box with the image size');
}

/**
 * Searches meta > iprp > ipco for `ispe` (image spatial extent) properties and returns the
 * largest: a file may hold a thumbnail or grid tiles beside its main image.
 */
function largestSpatialExtent(meta: Buffer): { width: number; height: number } | undefined {
  let largest: { width: number; height: number } | undefined;
  const visit = (box: Buffer, path: string) => {
    for (let at = 0; at + 8 <= box.length;) {
      const size = box.readUInt32BE(at);
      const type = box.toString('latin1', at + 4, at + 8);
      if (size < 8 || at + size > box.length) return;
      const body = box.subarray(at + 8, at + size);
      if (path === 'meta' && type === 'iprp') visit(body, 'iprp');
      else if (path === 'iprp' && type === 'ipco') visit(body, 'ipco');
      else if (path === 'ipco' && type === 'ispe' && body.length >= 12) {
        const width = body.readUInt32BE(4);
        const height = body.readUInt32BE(8);
        if (!largest || width * height > largest.width * largest.height) {
          largest = { width, height };
        }
      }
      at += size;
    }
  };
  visit(meta.subarray(4), 'meta'); // meta is a full box: version and flags come first
  return largest;
}
