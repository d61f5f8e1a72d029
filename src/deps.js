import { createMailer } from './mail/mailer.js';
import { createCardRenderer } from './reports/render-pool.js';
import { createLocalStorage, createS3Storage, createUrlSigner, } from './storage/index.js';
export function createDeps(config) {
    return {
        config,
        mailer: createMailer({
            smtpUrl: config.SMTP_URL,
            from: config.MAIL_FROM,
            outboxDir: config.OUTBOX_DIR,
            outboxDelayMs: config.OUTBOX_DELAY_MS,
        }),
        storage: createStorage(config),
        signer: createUrlSigner({ secret: config.SIGNING_SECRET, publicUrl: config.PUBLIC_URL }),
        cards: createCardRenderer({ threads: config.REPORT_RENDER_THREADS }),
    };
}
/** The bucket when S3_BUCKET is set (web and worker on different machines), else STORAGE_DIR. */
export function createStorage(config) {
    if (!config.S3_BUCKET)
        return createLocalStorage(config.STORAGE_DIR);
    const { AWS_ACCESS_KEY_ID: accessKeyId, AWS_SECRET_ACCESS_KEY: secretAccessKey } = config;
    return createS3Storage({
        bucket: config.S3_BUCKET,
        region: config.S3_REGION,
        endpoint: config.S3_ENDPOINT,
        forcePathStyle: config.S3_FORCE_PATH_STYLE,
        credentials: accessKeyId && secretAccessKey
            ? { accessKeyId, secretAccessKey, sessionToken: config.AWS_SESSION_TOKEN }
            : undefined,
    });
}
export async function closeDeps(deps) {
    deps.mailer.close();
    await deps.cards.close();
}
