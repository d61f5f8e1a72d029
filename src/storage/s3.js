// The S3 driver: one object per key in one bucket, on AWS S3 or any S3-compatible service
// (R2, MinIO, Spaces, B2...). Web and worker then share files without sharing a disk, as they
// must on a PaaS, where every dyno has its own ephemeral one.
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, paginateListObjectsV2, S3Client, } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { assertKey, assertPrefix, contentTypeOf, isKey, NotFoundError, } from './storage.js';
/** S3's smallest part; an upload buffers at most QUEUE_SIZE of them (10 MiB) at a time. */
const PART_SIZE = 5 * 1024 * 1024;
const QUEUE_SIZE = 2;
const isNotFound = (error) => error?.$metadata?.httpStatusCode === 404;
export function createS3Storage(options) {
    const Bucket = options.bucket;
    const client = new S3Client({
        region: options.region,
        ...(options.endpoint ? { endpoint: options.endpoint } : {}),
        forcePathStyle: options.forcePathStyle ?? false,
        ...(options.credentials ? { credentials: options.credentials } : {}),
        // The SDK's default adds CRC32 checksums as an aws-chunked trailer, which many
        // S3-compatible services refuse; HTTPS (and S3's own Content-MD5 where an API requires
        // it) already guards the bytes in transit.
        requestChecksumCalculation: 'WHEN_REQUIRED',
        responseChecksumValidation: 'WHEN_REQUIRED',
    });
    return {
        async put(key, stream, opts) {
            assertKey(key);
            let bytes = 0;
            const counter = new Transform({
                transform(chunk, _encoding, done) {
                    bytes += chunk.length;
                    done(null, chunk);
                },
            });
            const piping = pipeline(stream, counter);
            // Length unknown (an upload still arriving): one PutObject when it fits in a part, a
            // multipart upload otherwise. Either way the object appears whole when it completes, or
            // not at all (a failed multipart upload is aborted), so readers never see a part.
            const upload = new Upload({
                client,
                params: {
                    Bucket,
                    Key: key,
                    Body: counter,
                    ContentType: opts?.contentType ?? contentTypeOf(key),
                },
                partSize: PART_SIZE,
                queueSize: QUEUE_SIZE,
            });
            try {
                await Promise.all([upload.done(), piping]);
            }
            catch (error) {
                counter.destroy();
                await upload.abort().catch(() => undefined);
                throw error;
            }
            return { key, bytes };
        },
        async get(key) {
            assertKey(key);
            try {
                const { Body } = await client.send(new GetObjectCommand({ Bucket, Key: key }));
                if (!(Body instanceof Readable))
                    throw new Error(`S3 returned no stream for ${key}`);
                return Body;
            }
            catch (error) {
                throw isNotFound(error) ? new NotFoundError(key) : error;
            }
        },
        async delete(key) {
            assertKey(key);
            // S3 answers 204 for a missing key too: deleting twice is fine, as the interface asks.
            await client.send(new DeleteObjectCommand({ Bucket, Key: key }));
        },
        async stat(key) {
            assertKey(key);
            try {
                const head = await client.send(new HeadObjectCommand({ Bucket, Key: key }));
                return {
                    bytes: head.ContentLength ?? 0,
                    modifiedAt: head.LastModified ?? new Date(0),
                    // From the key, as the local driver does, not from the object's metadata: the type
                    // decides whether /files/... shows a file inline, so it comes from the allow-list.
                    contentType: contentTypeOf(key),
                };
            }
            catch (error) {
                if (isNotFound(error))
                    return null;
                throw error;
            }
        },
        list(prefix) {
            assertPrefix(prefix);
            return (async function* () {
                for await (const page of paginateListObjectsV2({ client }, { Bucket, Prefix: prefix })) {
                    for (const object of page.Contents ?? []) {
                        // Objects that other tools put in the bucket under other names are not ours.
                        if (object.Key && isKey(object.Key)) {
                            yield { key: object.Key, modifiedAt: object.LastModified ?? new Date(0) };
                        }
                    }
                }
            })();
        },
    };
}
