// Receives the one file of a multipart/form-data request as a stream (busboy): never buffered
// whole, never written under the client's file name, refused as soon as a limit is crossed.
import busboy, { type Busboy } from 'busboy';
import type { Request } from 'express';
import type { Readable } from 'node:stream';
import { HttpError } from './errors.js';

export interface UploadOptions {
  /** The form field that must carry the file. */
  field: string;
  /** The file's size limit; the rest of a bigger upload is not parsed (only discarded). */
  maxBytes: number;
  /** Plain text fields allowed beside the file (each at most 1 kB); any other is a 400. */
  fields?: readonly string[];
}

export interface Received<T> {
  /** What `save` resolved with. */
  saved: T;
  fields: Record<string, string>;
}

const MAX_FIELD_BYTES = 1024;

/** Room for the multipart framing around the file: boundaries and one part's headers. */
const FRAMING_BYTES = 64 * 1024;
const MAX_FILENAME_BYTES = 255;

const tooLarge = (maxBytes: number) =>
  new HttpError(413, `the file is larger than the limit of ${maxBytes} bytes`);

/**
 * Streams the request's file to `save` and resolves with what `save` resolves (and the plain
 * fields), once the whole request is read. Fails at once (413, or `save`'s own error) without
 * reading the rest; the error middleware answers, then reads off the rest within bounds before
 * it closes (src/http/drain.ts). Any other part, a second
 * file, a path in the file name or a malformed body is a 400. `save` must consume the stream
 * or fail.
 */
export async function receiveFile<T>(
  req: Request,
  { field, maxBytes, fields: allowed = [] }: UploadOptions,
  save: (file: Readable) => Promise<T>,
): Promise<Received<T>> {
  if (!req.is('multipart/form-data')) {
    throw new HttpError(415, `send multipart/form-data with the file in the field "${field}"`);
  }
  if (Number(req.get('content-length')) > maxBytes + FRAMING_BYTES) throw tooLarge(maxBytes);
  let parser: Busboy;
  try {
    parser = busboy({
      headers: req.headers,
      // Keep the name as sent, so a path in it is seen (and refused) rather than cut off.
      preservePath: true,
      limits: {
        fileSize: maxBytes,
        files: 1,
        fields: allowed.length,
        fieldSize: MAX_FIELD_BYTES,
        headerPairs: 10,
      },
    });
  } catch (error) {
    throw new HttpError(400, `bad multipart request: ${(error as Error).message}`);
  }

  return new Promise<Received<T>>((resolve, reject) => {
    const fields: Record<string, string> = {};
    let saving: Promise<T> | undefined;
    let settled = false;
    const fail = (error: unknown) => {
      if (settled) return;
      settled = true;
      // Stop reading: whatever else the client sends is not wanted. Destroying the parser
      // ends a file still streaming, so `save` fails too.
      req.unpipe(parser);
      parser.destroy();
      // Answer once `save` has settled, so the caller's clean-up cannot race a late write.
      const done = () => {
        reject(error instanceof Error ? error : new Error(String(error)));
      };
      (saving ?? Promise.resolve()).then(done, done);
    };
    const refuse = (message: string) => {
      fail(new HttpError(400, message));
    };

    parser.on('file', (name, file, { filename }) => {
      const problem = name === field ? badFilename(filename ?? '') : undefined;
      if (name !== field || problem) {
        file.on('error', () => undefined); // destroyed with the parser below: nothing to report
        file.resume();
        refuse(problem ?? `unexpected file field "${name}": send the file in "${field}"`);
        return;
      }
      file.once('limit', () => {
        // Stop reading now, not once `save` has failed: busboy would skip through the rest of
        // the file meanwhile, as fast as the client sends. The error middleware reads off
        // the rest, within DISCARD_MAX_BYTES, after it has answered.
        req.unpipe(parser);
        file.destroy(tooLarge(maxBytes));
      });
      saving = save(file);
      saving.catch(fail); // a refused file is answered at once, mid-upload
    });
    parser.on('field', (name, value, { valueTruncated }) => {
      if (!allowed.includes(name) || name in fields) {
        refuse(`unexpected field "${name}": send ${describe(field, allowed)}`);
      } else if (valueTruncated) {
        refuse(`the field "${name}" is longer than ${MAX_FIELD_BYTES} bytes`);
      } else {
        fields[name] = value;
      }
    });
    // Emitted as an unwanted part starts: a field past the count, or a file after the first.
    parser.on('fieldsLimit', () => {
      refuse(`send only ${describe(field, allowed)}`);
    });
    parser.on('filesLimit', () => {
      refuse(`send one file only, in the field "${field}"`);
    });
    parser.on('error', (error: Error) => {
      refuse(`malformed multipart body: ${error.message}`);
    });
    parser.on('close', () => {
      if (!saving) {
        refuse(`no file in the field "${field}"`);
        return;
      }
      saving.then((saved) => {
        if (settled) return;
        settled = true;
        resolve({ saved, fields });
      }, fail);
    });
    req.once('close', () => {
      if (!req.complete) fail(new HttpError(400, 'the upload was cut off'));
    });
    req.pipe(parser);
  });
}

const describe = (field: string, allowed: readonly string[]) =>
  `the file in "${field}" (with a file name)${allowed.length ? ` and the fields ${allowed.join(', ')}` : ', no plain fields'}`;

/** A file name is only ever shown, never used for storage; one that is a path is still refused. */
function badFilename(name: string): string | undefined {
  if (Buffer.byteLength(name) > MAX_FILENAME_BYTES) {
    return `the file name is longer than ${MAX_FILENAME_BYTES} bytes`;
  }
  // eslint-disable-next-line no-control-regex -- control characters are what this looks for
  if (/[/\\\u0000-\u001f\u007f]/.test(name) || name === '.' || name === '..') {
    return 'the file name must be a plain name: no path, no control characters';
  }
  return undefined;
}
