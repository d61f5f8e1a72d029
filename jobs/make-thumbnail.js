import { Readable } from 'node:stream';
import { z } from 'zod';
import { loadSharp } from '../src/images/sharp.js';
import { defineJob, PermanentError } from '../src/offload/index.js';
import { readStored } from '../src/storage/index.js';
/** Where POST /thumbnails stores an upload: a server-made name, never the client's. */
export const uploadKey = (id) => `uploads/${id}`;
const UPLOAD_KEY = /^uploads\/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/;
/**
 * Resizes an uploaded image to each of THUMBNAIL_WIDTHS as WebP (every browser shows it, and
 * it is about a third smaller than JPEG at the same quality), turned upright by its EXIF
 * orientation and stripped of metadata (location, camera serials). Never enlarges: a width
 * past the original's is made at the original's width, once. Re-running overwrites the same
 * keys. An image that cannot be decoded fails at once: retrying cannot mend it.
 */
export default defineJob({
    name: 'make-thumbnail',
    queue: 'media',
    input: z.strictObject({ key: z.string().regex(UPLOAD_KEY, 'must be an uploads/<uuid> key') }),
    retry: { attempts: 3, backoff: 'exponential', delayMs: 2_000, jitter: 0.2 },
    timeoutMs: 60_000,
    async run({ key }, ctx) {
        const { storage, signer, config } = ctx.deps;
        const id = UPLOAD_KEY.exec(key)?.[1] ?? '';
        const original = await readStored(storage, key, `the upload ${key}`);
        const sharp = await loadSharp();
        // failOn 'truncated': a cut-off file fails; minor flaws real cameras write still decode.
        // A fresh pipeline per width shares the buffer; clone() would copy the original each time.
        const upright = () => sharp(original, {
            limitInputPixels: config.IMAGE_MAX_PIXELS,
            failOn: 'truncated',
        }).autoOrient();
        const { format, compression, autoOrient } = await decoding(upright().metadata());
        const widths = [...new Set(config.THUMBNAIL_WIDTHS.map((w) => Math.min(w, autoOrient.width)))];
        const thumbnails = [];
        for (const width of widths) {
            ctx.signal.throwIfAborted();
            const { data, info } = await decoding(upright().resize({ width }).webp({ quality: 80 }).toBuffer({ resolveWithObject: true }));
            const thumbnailKey = `thumbnails/${id}-${width}.webp`;
            await storage.put(thumbnailKey, Readable.from([data]), { contentType: 'image/webp' });
            thumbnails.push({
                width: info.width,
                height: info.height,
                bytes: info.size,
                url: signer.signUrl(thumbnailKey, { expiresInMs: config.FILE_MAX_AGE_HOURS * 3_600_000 }),
            });
            await ctx.progress(Math.round((thumbnails.length / widths.length) * 100));
        }
        // libvips names every HEIF-based format 'heif'; the app accepts AVIF only and calls it so.
        const named = format === 'heif' && compression === 'av1' ? 'avif' : format;
        return { original: { format: named, ...autoOrient, bytes: original.length }, thumbnails };
    },
});
/** sharp's errors here are about the image's bytes: permanent, with libvips' reason. */
async function decoding(work) {
    try {
        return await work;
    }
    catch (error) {
        throw new PermanentError(`the image could not be decoded: ${error.message}`);
    }
}
