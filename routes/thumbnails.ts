import { createHash, randomUUID } from 'node:crypto';
import { pipeline } from 'node:stream';
import { Router } from 'express';
import { makeThumbnail } from '../jobs/index.js';
import { uploadKey } from '../jobs/make-thumbnail.js';
import type { Deps } from '../src/deps.js';
import { HttpError } from '../src/http/errors.js';
import { ImageCheck } from '../src/images/check.js';
import { ImageError, type ImageProblem } from '../src/images/formats.js';
import { enqueueOptions, keyedTo, sendAccepted, type Offloader } from '../src/offload/index.js';
import { receiveFile } from '../src/http/upload.js';

const STATUS: Record<ImageProblem, number> = {
  empty: 400,
  unsupported: 415,
  'too-many-pixels': 413,
  truncated: 422,
  malformed: 422,
};

/**
 * POST /thumbnails, multipart with the file in `image`: streams the upload to storage under a
 * new key while checking it is one whole JPEG, PNG, WebP, GIF or AVIF within the byte and pixel
 * limits, then offloads the resizing (202). A refused upload leaves nothing stored or enqueued.
 */
export function thumbnailsRouter({
  offloader,
  deps,
}: {
  offloader: Offloader;
  deps: Deps;
}): Router {
  const { storage, config } = deps;
  const router = Router();
  router.post('/thumbnails', async (req, res) => {
    const started = performance.now();
    const options = enqueueOptions(req); // a bad Idempotency-Key is refused before the upload
    const key = uploadKey(randomUUID());
    const hash = options.key === undefined ? undefined : createHash('sha256');
    try {
      const { saved: image } = await receiveFile(
        req,
        { field: 'image', maxBytes: config.UPLOAD_MAX_BYTES },
        async (file) => {
          // With a key, the upload's bytes are what the key is bound to.
          if (hash) file.on('data', (chunk: Buffer) => hash.update(chunk));
          const check = new ImageCheck(config.IMAGE_MAX_PIXELS);
          // Errors travel down the pipe into `check`, where storage.put sees them.
          const checked = pipeline(file, check, () => undefined);
          await storage.put(key, checked);
          if (!check.info) throw new Error('image check ended without a result');
          return check.info;
        },
      );
      const accepted = await offloader.enqueue(
        makeThumbnail,
        { key },
        { ...options, ...keyedTo(req, options, hash?.digest('hex')), summary: { image } },
      );
      // A retried request (same Idempotency-Key): the first upload is the job's, not this one.
      if (accepted.replayed) await storage.delete(key);
      res.set('Server-Timing', `upload;dur=${(performance.now() - started).toFixed(1)}`);
      sendAccepted(res, accepted);
    } catch (error) {
      await storage.delete(key);
      if (error instanceof ImageError) throw new HttpError(STATUS[error.problem], error.message);
      throw error;
    }
  });
  return router;
}
