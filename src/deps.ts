import type { Config } from './config.js';
import { createMailer, type Mailer } from './mail/mailer.js';
import {
  createLocalStorage,
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
}

export function createDeps(config: Config): Deps {
  return {
    config,
    mailer: createMailer({
      smtpUrl: config.SMTP_URL,
      from: config.MAIL_FROM,
      outboxDir: config.OUTBOX_DIR,
    }),
    storage: createLocalStorage(config.STORAGE_DIR),
    signer: createUrlSigner({ secret: config.SIGNING_SECRET, publicUrl: config.PUBLIC_URL }),
  };
}

export function closeDeps(deps: Deps): void {
  deps.mailer.close();
}
