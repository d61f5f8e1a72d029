// Runs a format's structure walker over a stream's chunks as they arrive, so an upload is
// checked in one pass with constant memory, whatever its size and however it is split.

/** What a walker asks for next. */
export type Need =
  /** The next `bytes` bytes; with `orEnd`, null when the input ends cleanly right here. */
  | { read: number; orEnd?: boolean }
  /** Pass over the next `skip` bytes. */
  | { skip: number }
  /** JPEG entropy-coded data: pass over it to the next marker; resumes with the marker's code. */
  | { marker: true };

/** A walker: yields what it needs, is resumed with it, returns once the image is complete. */
export type Walker = Generator<Need, void, Buffer | number | null>;

export class Walk {
  private need: Need | undefined;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** JPEG scans: the previous chunk ended on 0xFF, so the next byte is a marker code or stuffing. */
  private afterFF = false;
  /** Bytes the walker has taken in (not counting trailing data after the image's end). */
  consumed = 0;

  constructor(private readonly walker: Walker) {
    this.resume(null); // runs the walker to its first request
  }

  /** The image's structure ended (bytes after it are trailing data, allowed and ignored). */
  get done(): boolean {
    return this.need === undefined;
  }

  push(chunk: Buffer): void {
    let at = 0;
    while (this.need && at < chunk.length) {
      const need = this.need;
      if ('skip' in need) {
        const n = Math.min(need.skip, chunk.length - at);
        at += n;
        this.consumed += n;
        if (n === need.skip) this.resume(null);
        else this.need = { skip: need.skip - n };
      } else if ('read' in need) {
        const n = Math.min(need.read - this.pendingBytes, chunk.length - at);
        this.pending.push(chunk.subarray(at, at + n));
        this.pendingBytes += n;
        at += n;
        this.consumed += n;
        if (this.pendingBytes === need.read) {
          const bytes = Buffer.concat(this.pending, this.pendingBytes);
          this.pending = [];
          this.pendingBytes = 0;
          this.resume(bytes);
        }
      } else {
        at = this.scan(chunk, at);
      }
    }
  }

  /** The input ended: true when the image was complete. */
  end(): boolean {
    const need = this.need;
    if (need && 'read' in need && need.orEnd && this.pendingBytes === 0) this.resume(null);
    return this.done;
  }

  /** Entropy-coded data: 0xFF is followed by 0x00 (a stuffed byte), a restart marker or fill. */
  private scan(chunk: Buffer, from: number): number {
    let at = from;
    while (at < chunk.length) {
      if (!this.afterFF) {
        const ff = chunk.indexOf(0xff, at);
        if (ff === -1) {
          this.consumed += chunk.length - at;
          return chunk.length;
        }
        this.consumed += ff + 1 - at;
        at = ff + 1;
        this.afterFF = true;
        continue;
      }
      const code = chunk[at] ?? 0;
      at += 1;
      this.consumed += 1;
      if (code === 0xff) continue;
      this.afterFF = false;
      if (code === 0x00 || (code >= 0xd0 && code <= 0xd7)) continue;
      this.resume(code);
      return at;
    }
    return at;
  }

  private resume(value: Buffer | number | null): void {
    let next = this.walker.next(value);
    // Empty reads and skips are answered at once: waiting for data could wait past the end.
    while (
      !next.done &&
      (('skip' in next.value && next.value.skip === 0) ||
        ('read' in next.value && next.value.read === 0))
    ) {
      next = this.walker.next('read' in next.value ? Buffer.alloc(0) : null);
    }
    this.need = next.done ? undefined : next.value;
  }
}
