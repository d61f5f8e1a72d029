// What jobs and routes may ask of file storage. Small on purpose: each method maps onto one
// S3 call (PutObject, GetObject, DeleteObject, HeadObject, ListObjectsV2), so an S3-compatible
// driver can be added beside the local one without touching a job or a route.
import type { Readable } from 'node:stream';

export interface StoredFile {
  key: string;
  bytes: number;
}

export interface FileInfo {
  bytes: number;
  modifiedAt: Date;
  contentType: string;
}

export interface ListedFile {
  key: string;
  modifiedAt: Date;
}

export interface Storage {
  /**
   * Stores the whole stream under `key`, replacing any file there in one step: a reader sees
   * the old file or the new one, never a part. `contentType` is for drivers that keep metadata;
   * the local driver derives the type from the key's extension (keys are server-made).
   */
  put(key: string, stream: Readable, opts?: { contentType?: string }): Promise<StoredFile>;
  /** The file's bytes; throws NotFoundError when there is no file under `key`. */
  get(key: string): Promise<Readable>;
  /** Removes the file; removing a missing one is not an error (jobs may run twice). */
  delete(key: string): Promise<void>;
  /** Size, age and type, or null when there is no file under `key`. */
  stat(key: string): Promise<FileInfo | null>;
  /** Every file whose key starts with `prefix` (a plain string prefix, as in S3), in no order. */
  list(prefix: string): AsyncIterable<ListedFile>;
}

export class NotFoundError extends Error {
  constructor(readonly key: string) {
    super(`no file ${key}`);
    this.name = 'NotFoundError';
  }
}

/** A key that breaks the key rules: a bug in the caller, never a user's typo. */
export class InvalidKeyError extends Error {
  constructor(readonly key: string) {
    super(`invalid storage key ${JSON.stringify(key.slice(0, 80))}`);
    this.name = 'InvalidKeyError';
  }
}

export const MAX_KEY_LENGTH = 200;

/**
 * Segments of lower-case letters, digits, `_`, `.` and `-`, each starting with a letter or a
 * digit, joined by single slashes. That rules out `..`, `.`, empty segments, a leading slash,
 * backslashes, NUL and dotfiles (the local driver's temp files start with a dot), so a key can
 * never name a path outside the storage directory; lower case only, so two keys cannot collide
 * on a case-insensitive file system. Longer keys would break the 255-byte file-name limit.
 */
const KEY = /^[a-z0-9][a-z0-9_.-]*(?:\/[a-z0-9][a-z0-9_.-]*)*$/;

export function isKey(key: string): boolean {
  return key.length <= MAX_KEY_LENGTH && KEY.test(key);
}

export function assertKey(key: string): void {
  if (!isKey(key)) throw new InvalidKeyError(key);
}

/** A prefix for list(): '' (everything) or the start of some valid key. */
export function assertPrefix(prefix: string): void {
  if (prefix !== '' && !isKey(prefix) && !isKey(`${prefix}x`)) throw new InvalidKeyError(prefix);
}

/** Only raster images are shown inline; SVG is left out because it can carry script. */
const TYPES: Record<string, string> = {
  avif: 'image/avif',
  gif: 'image/gif',
  jpeg: 'image/jpeg',
  jpg: 'image/jpeg',
  png: 'image/png',
  webp: 'image/webp',
  csv: 'text/csv',
  json: 'application/json',
  pdf: 'application/pdf',
  txt: 'text/plain',
  zip: 'application/zip',
};

/** The content type a key's extension implies; unknown extensions are plain bytes. */
export function contentTypeOf(key: string): string {
  const extension = /\.([a-z0-9]+)$/.exec(key)?.[1];
  return (extension && TYPES[extension]) ?? 'application/octet-stream';
}
