import type { Config } from './config.js';
import { createMailer, type Mailer } from './mail/mailer.js';

/** What every job (and the routes that run a job inline) is handed: `ctx.deps` in a job. */
export interface Deps {
  config: Config;
  mailer: Mailer;
}

export function createDeps(config: Config): Deps {
  return {
    config,
    mailer: createMailer({
      smtpUrl: config.SMTP_URL,
      from: config.MAIL_FROM,
      outboxDir: config.OUTBOX_DIR,
    }),
  };
}

export function closeDeps(deps: Deps): void {
  deps.mailer.close();
}
