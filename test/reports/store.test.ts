import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { PermanentError } from '../../src/offload/index.js';
import { sampleRoster } from '../../src/reports/roster.js';
import { readRoster, rosterKey } from '../../src/reports/store.js';
import { createLocalStorage, type Storage } from '../../src/storage/index.js';

describe('report store: readRoster', () => {
  let dir: string;
  let storage: Storage;
  before(async () => {
    dir = await mkdtemp(join(os.tmpdir(), 'offload-roster-'));
    storage = createLocalStorage(dir);
  });
  after(() => rm(dir, { recursive: true, force: true }));

  const store = (id: string, count: number) =>
    storage.put(rosterKey(id), Readable.from([JSON.stringify(sampleRoster(count))]));

  it('when the chunks of one report read its roster, then it is parsed once and they share the rows', async () => {
    await store('a', 5);
    const [first, second] = await Promise.all([readRoster(storage, 'a'), readRoster(storage, 'a')]);
    assert.deepEqual(first, sampleRoster(5));
    assert.equal(second, first, 'the same parsed rows');
    assert.equal(await readRoster(storage, 'a'), first);
  });

  it('when other reports are read since, then the oldest roster is let go and read again', async () => {
    await store('b', 1);
    await store('c', 2);
    const b = await readRoster(storage, 'b');
    await readRoster(storage, 'c');
    assert.equal(await readRoster(storage, 'b'), b, 'still kept');
    await store('e', 3);
    await readRoster(storage, 'e');
    const again = await readRoster(storage, 'b');
    assert.notEqual(again, b, 'read again');
    assert.deepEqual(again, b);
  });

  it('when the roster is missing, then the read fails for good, and once it is stored, it is read', async () => {
    await assert.rejects(readRoster(storage, 'late'), PermanentError);
    await store('late', 4);
    assert.equal((await readRoster(storage, 'late')).length, 4);
  });
});
