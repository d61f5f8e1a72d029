import assert from 'node:assert/strict';
import { buffer } from 'node:stream/consumers';
import { crc32 } from 'node:zlib';
import yauzl from 'yauzl';
import yazl from 'yazl';
import { readStoredZip, storedZipWriter, type ZipEntry } from '../../src/reports/zip.js';

const ISSUED = new Date('2026-09-01');

/** The zip as an independent reader (yauzl) sees it: every entry's name, bytes and date. */
async function unzip(zip: Buffer) {
  const reader = await yauzl.fromBufferPromise(zip, { lazyEntries: true });
  const entries: { name: string; data: Buffer; crc32: number; date: Date; method: number }[] = [];
  await new Promise<void>((resolve, reject) => {
    reader.on('entry', (entry: yauzl.Entry) => {
      reader
        .openReadStreamPromise(entry)
        .then((stream) => buffer(stream))
        .then((data) => {
          entries.push({
            name: entry.fileName,
            data,
            crc32: entry.crc32,
            date: entry.getLastModDate({ timezone: 'UTC' }),
            method: entry.compressionMethod,
          });
          reader.readEntry();
        }, reject);
    });
    reader.once('end', resolve);
    reader.once('error', reject);
    reader.readEntry();
  });
  return { count: reader.entryCount, entries };
}

function write(batches: ZipEntry[][]): Buffer {
  const zip = storedZipWriter({ mtime: ISSUED });
  return Buffer.concat([...batches.map((batch) => zip.add(batch)), zip.end()]);
}

const entry = (name: string, text: string): ZipEntry => ({ name, data: Buffer.from(text) });

describe('stored zips (chunk and report zips)', () => {
  it('when entries are added in batches, then a zip reader finds each, in order, stored, with its bytes, CRC-32 and the issue date', async () => {
    const batches = [
      [entry('S00001-ada.pdf', '%PDF-1 ada'), entry('id-cards/é-accented.pdf', 'é')],
      [],
      [entry('S00003-empty.pdf', ''), { name: 'big.bin', data: Buffer.alloc(70_000, 7) }],
    ];
    const { count, entries } = await unzip(write(batches));
    const expected = batches.flat();
    assert.equal(count, expected.length);
    assert.deepEqual(
      entries.map((e) => e.name),
      expected.map((e) => e.name),
    );
    for (const [i, e] of entries.entries()) {
      assert.deepEqual(e.data, Buffer.from(expected[i]?.data ?? []), e.name);
      assert.equal(e.crc32, crc32(e.data), e.name);
      assert.equal(e.method, 0, `${e.name} is stored`);
      assert.equal(e.date.toISOString(), '2026-09-01T00:00:00.000Z', e.name);
    }
  });

  it('when a zip is read back, then each entry is a view on its bytes with its CRC-32, and re-zipped with that CRC it gives the same bytes', async () => {
    const cards = [entry('a.pdf', 'first card'), entry('b.pdf', 'second card')];
    const zip = write([cards]);
    const read = await readStoredZip(zip);
    assert.deepEqual([...read.keys()], ['a.pdf', 'b.pdf']);
    for (const card of cards) {
      const got = read.get(card.name);
      assert.ok(got);
      assert.deepEqual(got.data, card.data);
      assert.equal(got.data.buffer, zip.buffer, 'no copy');
      assert.equal(got.crc32, crc32(card.data));
    }
    const copied = write([
      [...read].map(([name, { data, crc32: known }]) => ({ name, data, crc32: known })),
    ]);
    assert.deepEqual(copied, zip);
  });

  it('when a zip has more than 65,535 entries, then it ends with the zip64 records and a reader counts them all', async () => {
    const many = Array.from({ length: 70_000 }, (_, i) => entry(`${i}.txt`, String(i)));
    const zip = write([many.slice(0, 40_000), many.slice(40_000)]);
    const reader = await yauzl.fromBufferPromise(zip, { lazyEntries: true });
    assert.equal(reader.entryCount, 70_000);
    const read = await readStoredZip(zip);
    assert.equal(read.size, 70_000);
    assert.equal(read.get('69999.txt')?.data.toString(), '69999');
  });

  it('when a zip holds a compressed entry, then reading it as stored rejects naming the entry', async () => {
    const other = new yazl.ZipFile();
    other.addBuffer(Buffer.alloc(1000, 1), 'packed.pdf', { compress: true });
    other.end();
    const zip = await buffer(other.outputStream);
    await assert.rejects(readStoredZip(zip), /packed\.pdf is not a stored entry/);
  });

  it('when the bytes are not a zip, then reading rejects', async () => {
    await assert.rejects(readStoredZip(Buffer.from('not a zip at all, just text')));
  });
});
