// A pass-through stream for uploads: the bytes flow on to storage while their structure is
// checked, and the stream fails, as early as the bytes allow, for anything that is not one
// complete image of an accepted format within the pixel limit.
import { Transform, type TransformCallback } from 'node:stream';
import {
  FORMAT_NAMES,
  ImageError,
  SNIFF_BYTES,
  sniff,
  walkerFor,
  type ImageFormat,
} from './formats.js';
import { Walk } from './walk.js';

export interface ImageInfo {
  format: ImageFormat;
  width: number;
  height: number;
  bytes: number;
}

const ACCEPTED = Object.values(FORMAT_NAMES).join(', ');

export class ImageCheck extends Transform {
  private head: Buffer[] = [];
  private headBytes = 0;
  private walk: Walk | undefined;
  private format: ImageFormat | undefined;
  private size: { width: number; height: number } | undefined;
  private bytes = 0;

  constructor(private readonly maxPixels: number) {
    super();
  }

  /** What the image is, once the stream has ended without an error. */
  get info(): ImageInfo | undefined {
    if (!this.format || !this.size || !this.walk?.done) return undefined;
    return { format: this.format, ...this.size, bytes: this.bytes };
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    try {
      this.bytes += chunk.length;
      if (this.walk) this.walk.push(chunk);
      else this.start(chunk);
      done(null, chunk);
    } catch (error) {
      done(error as Error);
    }
  }

  override _flush(done: TransformCallback): void {
    try {
      if (!this.walk) this.start(Buffer.alloc(0), true);
      if (!this.walk?.end()) {
        throw new ImageError(
          'truncated',
          `the ${this.name()} is truncated: the file ends before the image does`,
        );
      }
      if (!this.size) throw new ImageError('malformed', `the ${this.name()} has no image size`);
      done();
    } catch (error) {
      done(error as Error);
    }
  }

  /** Collects the first bytes until the format can be told, then starts its walker. */
  private start(chunk: Buffer, ended = false): void {
    this.head.push(chunk);
    this.headBytes += chunk.length;
    if (this.headBytes < SNIFF_BYTES && !ended) return;
    if (this.headBytes === 0) throw new ImageError('empty', 'the file is empty');
    const head = Buffer.concat(this.head);
    this.head = [];
    this.format = sniff(head);
    if (!this.format) {
      throw new ImageError(
        'unsupported',
        `not an accepted image: by its content it is none of ${ACCEPTED}`,
      );
    }
    this.walk = new Walk(
      walkerFor(this.format, (width, height) => {
        this.checkSize(width, height);
      }),
    );
    this.walk.push(head);
  }

  private checkSize(width: number, height: number): void {
    if (width === 0 || height === 0) {
      throw new ImageError('malformed', `the ${this.name()} declares a size of ${width}×${height}`);
    }
    const pixels = width * height;
    if (pixels > this.maxPixels) {
      throw new ImageError(
        'too-many-pixels',
        `the image is ${width}×${height} (${megapixels(pixels)} megapixels); the limit is ${megapixels(this.maxPixels)} megapixels`,
      );
    }
    this.size = { width, height };
  }

  private name(): string {
    return this.format ? FORMAT_NAMES[this.format] : 'file';
  }
}

const megapixels = (pixels: number) => String(Math.round(pixels / 1e5) / 10);
