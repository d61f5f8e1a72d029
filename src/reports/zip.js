// Zips of stored (uncompressed) entries, written in whole batches. A report's cards are PDFs,
// compressed inside already, so the zip only frames them; doing that per card through a
// general zip stream (a stream, a CRC pass and a small write per entry) cost more than the
// framing itself. Here a batch of entries becomes one buffer, and an entry's CRC-32 is
// computed once, when its card is first zipped (render-cards), and reused when the report's
// zip copies it from the chunk (zip-report).
import { crc32 } from 'node:zlib';
import yauzl from 'yauzl';
const LOCAL_HEADER = 30;
const CENTRAL_HEADER = 46;
const END_RECORD = 22;
const ZIP64_END_RECORD = 56;
const ZIP64_LOCATOR = 20;
/** Version 2.0 (what stored entries and UTF-8 names need); 4.5 once the zip64 end is written. */
const VERSION_NEEDED = 20;
const VERSION_NEEDED_ZIP64 = 45;
/** Made on Unix (3), spec 6.3: the external attributes then carry a file mode. */
const VERSION_MADE_BY = (3 << 8) | 63;
const UTF8_NAMES = 1 << 11;
/** A regular file, rw-r--r--. */
const FILE_ATTRIBUTES = (0o100644 << 16) >>> 0;
const MAX_16 = 0xffff;
const MAX_32 = 0xffffffff;
/**
 * Starts a zip whose entries all carry `mtime`. DOS times have no zone: its UTC fields are
 * written, so a report issued on a date reads as that date wherever the worker runs.
 */
export function storedZipWriter({ mtime }) {
    const dosTime = (mtime.getUTCHours() << 11) | (mtime.getUTCMinutes() << 5) | (mtime.getUTCSeconds() >> 1);
    const dosDate = (Math.min(Math.max(mtime.getUTCFullYear() - 1980, 0), 127) << 9) |
        ((mtime.getUTCMonth() + 1) << 5) |
        mtime.getUTCDate();
    /** The central directory's records, kept until the end (about 80 bytes per entry). */
    const central = [];
    let centralBytes = 0;
    let offset = 0;
    let count = 0;
    return {
        add(entries) {
            const named = entries.map((entry) => ({ entry, name: Buffer.from(entry.name, 'utf8') }));
            let size = 0;
            for (const { entry, name } of named)
                size += LOCAL_HEADER + name.length + entry.data.length;
            // Without zip64 records per entry, every offset and size must fit in 32 bits: about
            // 1.4 million cards, far beyond any roster the app accepts.
            if (offset + size > MAX_32)
                throw new Error('the zip would pass 4 GiB');
            const out = Buffer.allocUnsafe(size);
            let at = 0;
            for (const { entry, name } of named) {
                if (name.length > MAX_16)
                    throw new Error(`zip entry name too long: ${entry.name}`);
                const crc = entry.crc32 ?? crc32(entry.data);
                const { length } = entry.data;
                out.writeUInt32LE(0x04034b50, at);
                out.writeUInt16LE(VERSION_NEEDED, at + 4);
                out.writeUInt16LE(UTF8_NAMES, at + 6);
                out.writeUInt16LE(0, at + 8); // stored
                out.writeUInt16LE(dosTime, at + 10);
                out.writeUInt16LE(dosDate, at + 12);
                out.writeUInt32LE(crc, at + 14);
                out.writeUInt32LE(length, at + 18); // compressed size: stored, so the same
                out.writeUInt32LE(length, at + 22);
                out.writeUInt16LE(name.length, at + 26);
                out.writeUInt16LE(0, at + 28); // no extra field
                name.copy(out, at + LOCAL_HEADER);
                out.set(entry.data, at + LOCAL_HEADER + name.length);
                const record = Buffer.allocUnsafe(CENTRAL_HEADER + name.length);
                record.writeUInt32LE(0x02014b50, 0);
                record.writeUInt16LE(VERSION_MADE_BY, 4);
                record.writeUInt16LE(VERSION_NEEDED, 6);
                record.writeUInt16LE(UTF8_NAMES, 8);
                record.writeUInt16LE(0, 10);
                record.writeUInt16LE(dosTime, 12);
                record.writeUInt16LE(dosDate, 14);
                record.writeUInt32LE(crc, 16);
                record.writeUInt32LE(length, 20);
                record.writeUInt32LE(length, 24);
                record.writeUInt16LE(name.length, 28);
                record.writeUInt32LE(0, 30); // extra field and comment lengths
                record.writeUInt32LE(0, 34); // disk number, internal attributes
                record.writeUInt32LE(FILE_ATTRIBUTES, 38);
                record.writeUInt32LE(offset + at, 42);
                name.copy(record, CENTRAL_HEADER);
                central.push(record);
                centralBytes += record.length;
                at += LOCAL_HEADER + name.length + length;
            }
            offset += size;
            count += entries.length;
            return out;
        },
        end() {
            if (offset + centralBytes > MAX_32)
                throw new Error('the zip would pass 4 GiB');
            // More than 65,535 entries need the zip64 end records (REPORT_MAX_STUDENTS allows it);
            // the plain end record then says "see zip64" with its all-ones count.
            const zip64 = count > MAX_16;
            const tail = Buffer.alloc((zip64 ? ZIP64_END_RECORD + ZIP64_LOCATOR : 0) + END_RECORD);
            let at = 0;
            if (zip64) {
                const end64 = offset + centralBytes;
                tail.writeUInt32LE(0x06064b50, 0);
                tail.writeBigUInt64LE(BigInt(ZIP64_END_RECORD - 12), 4); // size of the rest of it
                tail.writeUInt16LE(VERSION_MADE_BY, 12);
                tail.writeUInt16LE(VERSION_NEEDED_ZIP64, 14);
                // disk numbers (0, 0) at 16 and 20 are left zero
                tail.writeBigUInt64LE(BigInt(count), 24);
                tail.writeBigUInt64LE(BigInt(count), 32);
                tail.writeBigUInt64LE(BigInt(centralBytes), 40);
                tail.writeBigUInt64LE(BigInt(offset), 48);
                tail.writeUInt32LE(0x07064b50, 56);
                tail.writeUInt32LE(0, 60); // the disk with the zip64 end record
                tail.writeBigUInt64LE(BigInt(end64), 64);
                tail.writeUInt32LE(1, 72); // disks in all
                at = ZIP64_END_RECORD + ZIP64_LOCATOR;
            }
            tail.writeUInt32LE(0x06054b50, at);
            // disk numbers (0, 0) at +4 and +6 are left zero
            tail.writeUInt16LE(zip64 ? MAX_16 : count, at + 8);
            tail.writeUInt16LE(zip64 ? MAX_16 : count, at + 10);
            tail.writeUInt32LE(centralBytes, at + 12);
            tail.writeUInt32LE(offset, at + 16);
            // no comment (length 0 at +20)
            const closing = Buffer.concat([...central, tail]);
            central.length = 0;
            return closing;
        },
    };
}
/**
 * The entries of a zip of stored entries (as `storedZipWriter` writes them), by name, each
 * with its CRC-32 as the zip records it and its bytes as a view into `zip` (no copy). yauzl
 * reads the central directory; an entry that is compressed, or whose local header is not where
 * that directory says, is an error: this is for the app's own zips, not for any upload.
 */
export async function readStoredZip(zip) {
    const reader = await yauzl.fromBufferPromise(zip, { lazyEntries: true });
    const entries = new Map();
    await new Promise((resolve, reject) => {
        reader.on('entry', (entry) => {
            const header = entry.relativeOffsetOfLocalHeader;
            const start = header + LOCAL_HEADER <= zip.length && zip.readUInt32LE(header) === 0x04034b50
                ? header + LOCAL_HEADER + zip.readUInt16LE(header + 26) + zip.readUInt16LE(header + 28)
                : NaN;
            if (entry.compressionMethod !== 0 ||
                entry.compressedSize !== entry.uncompressedSize ||
                !(start + entry.compressedSize <= zip.length)) {
                // Not reading on: the reader stops here.
                reject(new Error(`${entry.fileName} is not a stored entry where the zip says`));
                return;
            }
            const data = zip.subarray(start, start + entry.compressedSize);
            entries.set(entry.fileName, { data, crc32: entry.crc32 });
            reader.readEntry();
        });
        reader.once('end', resolve);
        reader.once('error', reject);
        reader.readEntry();
    });
    return entries;
}
