import { PassThrough, Readable } from 'node:stream';
import yauzl from 'yauzl';
import yazl from 'yazl';
import { z } from 'zod';
import type { Deps } from '../src/deps.js';
import { defineJob, type JobContext } from '../src/offload/index.js';
import { cardFileName, chunkKey, readRoster, zipKey } from '../src/reports/store.js';
import { readStored, type Storage } from '../src/storage/index.js';
import sendEmail from './send-email.js';

/**
 * The last step of a report, run once every chunk has rendered (a workflow's parent: Celery's
 * chord callback). Streams every card from the chunk zips into one zip, one chunk in memory at
 * a time, stores it, and enqueues the email with its link under a key: a re-run of this step
 * rebuilds the same zip and sends no second email.
 */
export default defineJob({
  name: 'zip-report',
  queue: 'reports',
  input: z.strictObject({
    reportId: z.uuid(),
    email: z.email().max(254),
    issued: z.iso.date(),
    chunkSize: z.int().min(1),
  }),
  retry: { attempts: 3, backoff: 'exponential', delayMs: 2_000, jitter: 0.2 },
  timeoutMs: 5 * 60_000,
  async run({ reportId, email, issued, chunkSize }, ctx: JobContext<Deps>) {
    const { storage, signer, config } = ctx.deps;
    const students = await readRoster(storage, reportId);
    const chunks = chunkReader(storage, reportId);

    const zip = new yazl.ZipFile();
    const output = new PassThrough();
    zip.outputStream.pipe(output);
    // yazl reports a failed entry on the zip itself: fail the write, and with it the job.
    zip.on('error', (error: Error) => output.destroy(error));
    const storing = storage.put(zipKey(reportId), output);
    const mtime = new Date(issued);
    for (const [row, student] of students.entries()) {
      const from = row - (row % chunkSize);
      const name = cardFileName(student);
      // yazl asks for each entry's bytes only when it writes that entry.
      zip.addReadStreamLazy(`id-cards/${name}`, { compress: false, mtime }, (callback) => {
        chunks.open(from, name).then(
          (stream) => {
            callback(null, stream);
          },
          (error: unknown) => {
            callback(error, new PassThrough()); // yazl ends the zip with the error
          },
        );
      });
    }
    zip.end();
    const { bytes } = await storing.catch((error: unknown) => {
      output.destroy();
      throw error;
    });

    const mail = await ctx.enqueue(
      sendEmail,
      { template: 'report-ready', to: email, reportId, cards: students.length },
      { key: `report-ready:${reportId}` },
    );
    const url = signer.signUrl(zipKey(reportId), {
      expiresInMs: config.FILE_MAX_AGE_HOURS * 3_600_000,
    });
    return { cards: students.length, bytes, url, mailJobId: mail.id };
  },
});

/** Opens card PDFs inside chunk zips, keeping only the chunk being read in memory. */
function chunkReader(storage: Storage, reportId: string) {
  let loaded: { from: number; chunk: ReturnType<typeof loadChunk> } | undefined;
  return {
    async open(from: number, name: string): Promise<Readable> {
      // yazl asks entry by entry, in order: when the chunk changes, the last one is let go.
      if (loaded?.from !== from)
        loaded = { from, chunk: loadChunk(storage, chunkKey(reportId, from)) };
      const { zip, entries, bytes } = await loaded.chunk;
      const entry = entries.get(name);
      if (!entry) throw new Error(`card ${name} is missing from its chunk (rows from ${from})`);
      if (
        entry.compressionMethod !== 0 ||
        bytes.readUInt32LE(entry.relativeOffsetOfLocalHeader) !== 0x04034b50
      ) {
        return zip.openReadStreamPromise(entry); // not stored, or not where it says: let yauzl read it
      }
      // A stored entry's bytes are a slice of the chunk: no stream per card, no copy. They
      // start after its local header: 30 bytes, then the name and extra field it sizes.
      const header = entry.relativeOffsetOfLocalHeader;
      const start = header + 30 + bytes.readUInt16LE(header + 26) + bytes.readUInt16LE(header + 28);
      return Readable.from([bytes.subarray(start, start + entry.compressedSize)]);
    },
  };
}

async function loadChunk(storage: Storage, key: string) {
  const bytes = await readStored(storage, key);
  const zip = await yauzl.fromBufferPromise(bytes, { lazyEntries: true });
  const entries = new Map<string, yauzl.Entry>();
  await new Promise<void>((resolve, reject) => {
    zip.on('entry', (entry: yauzl.Entry) => {
      entries.set(entry.fileName, entry);
      zip.readEntry();
    });
    zip.once('end', resolve);
    zip.once('error', reject);
    zip.readEntry();
  });
  return { zip, entries, bytes };
}
