// multipart/form-data bodies built byte by byte, so tests can send what no well-behaved client
// would: path-like or NUL-bearing file names, stray parts, a missing closing boundary.

export interface Part {
  name: string;
  /** Makes the part a file (any string, sent as is). */
  filename?: string;
  /** Replaces `; filename="…"` with raw parameters, e.g. `; filename*=UTF-8''a%00b.jpg`. */
  rawParams?: string;
  type?: string;
  data: Buffer | string;
}

export const BOUNDARY = 'offload-test-boundary-7MA4YWxkTrZu0gW';
export const MULTIPART_TYPE = `multipart/form-data; boundary=${BOUNDARY}`;

export function multipart(parts: Part[], { close = true } = {}): Buffer {
  const chunks: Buffer[] = [];
  for (const part of parts) {
    const filename =
      part.rawParams ?? (part.filename === undefined ? '' : `; filename="${part.filename}"`);
    const type = part.type ? `\r\nContent-Type: ${part.type}` : '';
    chunks.push(
      Buffer.from(
        `--${BOUNDARY}\r\nContent-Disposition: form-data; name="${part.name}"${filename}${type}\r\n\r\n`,
        'latin1',
      ),
      Buffer.from(part.data),
      Buffer.from('\r\n'),
    );
  }
  if (close) chunks.push(Buffer.from(`--${BOUNDARY}--\r\n`));
  return Buffer.concat(chunks);
}
