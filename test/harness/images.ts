// Real images, made by sharp in the test itself: no binary fixtures.
import { crc32 } from 'node:zlib';
import sharp from 'sharp';

export type Format = 'jpeg' | 'png' | 'webp' | 'gif' | 'avif';

/** A noisy picture (noise compresses badly, so files have realistic sizes). */
export async function makeImage(
  format: Format,
  width: number,
  height: number,
  options: { orientation?: number; exif?: boolean } = {},
): Promise<Buffer> {
  const noise = { type: 'gaussian', mean: 128, sigma: 60 } as const;
  const raw = await sharp({ create: { width, height, channels: 3, noise, background: 'black' } })
    .raw()
    .toBuffer();
  let image = sharp(raw, { raw: { width, height, channels: 3 } });
  if (options.orientation) image = image.withMetadata({ orientation: options.orientation });
  if (options.exif) {
    image = image.withExif({ IFD0: { Copyright: 'secret camera owner', Artist: 'Ada' } });
  }
  switch (format) {
    case 'jpeg':
      return image.jpeg().toBuffer();
    case 'png':
      return image.png().toBuffer();
    case 'webp':
      return image.webp().toBuffer();
    case 'gif':
      return image.gif().toBuffer();
    case 'avif':
      return image.avif({ effort: 0 }).toBuffer();
  }
}

/**
 * A decompression bomb's calling card: a real, tiny PNG whose header declares a huge canvas
 * (the IHDR's CRC is recomputed, so only the size is a lie).
 */
export async function pixelBombPng(width: number, height: number): Promise<Buffer> {
  const png = await makeImage('png', 8, 8);
  const bomb = Buffer.from(png);
  bomb.writeUInt32BE(width, 16);
  bomb.writeUInt32BE(height, 20);
  bomb.writeUInt32BE(crc32(bomb.subarray(12, 29)), 29); // CRC over type + IHDR data
  return bomb;
}

/** The first part of a file: what a dropped connection or a broken disk leaves. */
export const truncate = (file: Buffer, fraction = 0.5) =>
  file.subarray(0, Math.floor(file.length * fraction));
