import type { Config } from './config.js';
import { createPool, type Db } from './db/pool.js';
import { createMailer, type Mailer } from './mail/mailer.js';
import { createCardRenderer, type CardRenderer } from './reports/render-pool.js';
import {
  createLocalStorage,
  createS3Storage,
  createUrlSigner,
  type Storage,
  type UrlSigner,
} from './storage/index.js';

/** What every job (and the routes that run a job inline) is handed: `ctx.deps` in a job. */
export interface Deps {
  config: Config;
  mailer: Mailer;
  storage: Storage;
  /** Signs /files/... download links (the web process verifies them with the same secret). */
  signer: UrlSigner;
  /** Renders ID cards on worker threads; starts its threads on first use. */
  cards: CardRenderer;
  /** Postgres (DATABASE_URL): the users; none when unset. */
  db?: Db | undefined;
}

export function createDeps(config: Config): Deps {
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
    db: config.DATABASE_URL
      ? createPool(config.DATABASE_URL, config.DATABASE_POOL_SIZE)
      : undefined,
  };
}

/** The bucket when S3_BUCKET is set (web and worker on different machines), else STORAGE_DIR. */
export function createStorage(config: Config): Storage {
  if (!config.S3_BUCKET) return createLocalStorage(config.STORAGE_DIR);
  const { AWS_ACCESS_KEY_ID: accessKeyId, AWS_SECRET_ACCESS_KEY: secretAccessKey } = config;
  return createS3Storage({
    bucket: config.S3_BUCKET,
    region: config.S3_REGION,
    endpoint: config.S3_ENDPOINT,
    forcePathStyle: config.S3_FORCE_PATH_STYLE,
    credentials:
      accessKeyId && secretAccessKey
        ? { accessKeyId, secretAccessKey, sessionToken: config.AWS_SESSION_TOKEN }
        : undefined,
  });
}

export async function closeDeps(deps: Deps): Promise<void> {
  deps.mailer.close();
  await deps.cards.close();
  await deps.db?.end();
}
