// The local-directory driver: one file per key under one directory (STORAGE_DIR).
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { lstat, mkdir, open, readdir, rename, rm, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join, resolve, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { assertKey, assertPrefix, contentTypeOf, InvalidKeyError, isKey, NotFoundError, } from './storage.js';
/** ENOTDIR: a key runs through a file (`a.png/b`), so there is no such file either. */
const isMissing = (error) => error instanceof Error &&
    ['ENOENT', 'ENOTDIR'].includes(error.code ?? '');
export function createLocalStorage(dir) {
    const root = resolve(dir);
    function pathOf(key) {
        assertKey(key);
        const path = join(root, ...key.split('/'));
        // The key rules already keep every path inside root; this is the second lock on that door.
        if (!path.startsWith(root + sep))
            throw new InvalidKeyError(key);
        return path;
    }
    async function* walk(dirKey, prefix) {
        let entries;
        try {
            entries = await readdir(join(root, dirKey), { withFileTypes: true });
        }
        catch (error) {
            if (isMissing(error))
                return;
            throw error;
        }
        for (const entry of entries) {
            const key = dirKey + entry.name;
            // Temp files and anything else that is not a key (dotfiles, symlinks) are never listed.
            if (!isKey(key))
                continue;
            if (entry.isDirectory()) {
                if (`${key}/`.startsWith(prefix))
                    yield* walk(`${key}/`, prefix);
            }
            else if (entry.isFile() && key.startsWith(prefix)) {
                // A file deleted since readdir (a concurrent cleanup) is simply not listed.
                const info = await lstat(join(root, dirKey, entry.name)).catch((error) => {
                    if (isMissing(error))
                        return null;
                    throw error;
                });
                if (info)
                    yield { key, modifiedAt: info.mtime };
            }
        }
    }
    return {
        async put(key, stream) {
            const path = pathOf(key);
            // An upload can fail while the directory is being made; until pipeline() listens, this
            // keeps that error from going unhandled (pipeline still sees it: the stream is errored).
            const hold = () => undefined;
            stream.on('error', hold);
            try {
                await mkdir(dirname(path), { recursive: true });
            }
            catch (error) {
                stream.off('error', hold);
                throw error;
            }
            // Written beside the target and renamed over it: a rename within one directory is atomic,
            // so readers see the old file or the new one, and a re-run replaces the file whole. The
            // leading dot means a temp file can never be read, listed or overwritten as a key.
            const temp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
            try {
                // flush: the bytes are on disk before the rename publishes them (a crash cannot leave
                // an empty file under the key).
                const writing = pipeline(stream, createWriteStream(temp, { flags: 'wx', flush: true }));
                stream.off('error', hold);
                await writing;
                const { size } = await stat(temp);
                await rename(temp, path);
                return { key, bytes: size };
            }
            catch (error) {
                await rm(temp, { force: true });
                throw error;
            }
        },
        async get(key) {
            const path = pathOf(key);
            const handle = await open(path, 'r').catch((error) => {
                throw isMissing(error) ? new NotFoundError(key) : error;
            });
            try {
                // open() succeeds on a directory (a key that is only a prefix): that is no file either.
                if (!(await handle.stat()).isFile())
                    throw new NotFoundError(key);
            }
            catch (error) {
                await handle.close();
                throw error;
            }
            // The stream owns the handle and closes it at its end, on error, or when destroyed.
            // 1 MiB reads: a 10 MB upload is ten reads, not 160 (each waits in libuv's thread pool).
            return handle.createReadStream({ highWaterMark: 1 << 20 });
        },
        async delete(key) {
            await unlink(pathOf(key)).catch((error) => {
                if (!isMissing(error))
                    throw error;
            });
        },
        async stat(key) {
            const info = await stat(pathOf(key)).catch((error) => {
                if (isMissing(error))
                    return null;
                throw error;
            });
            if (!info?.isFile())
                return null;
            return { bytes: info.size, modifiedAt: info.mtime, contentType: contentTypeOf(key) };
        },
        list(prefix) {
            assertPrefix(prefix);
            // Only the directory the prefix names in full needs reading; the rest of it filters.
            return walk(prefix.slice(0, prefix.lastIndexOf('/') + 1), prefix);
        },
    };
}
