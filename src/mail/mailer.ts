import type { Config } from '../config.js';
import type { Database } from '../db/index.js';
import type { Language } from '../i18n/catalogue.js';
import type { Logger } from '../logger.js';
import type { MailPurpose } from './messages.js';
import type { KeyRing } from '../security/key-encryption.js';
import { queueMail } from './deliveries.js';
import { writeToOutbox } from './outbox.js';

export interface Mail {
  to: string;
  /** The account the message concerns; the outbox row goes when the account is deleted. */
  accountId: string | null;
  purpose: MailPurpose;
  language: Language;
  subject: string;
  text: string;
}

export interface Mailer {
  readonly mode: 'smtp' | 'outbox';
  send(mail: Mail): Promise<void>;
}

/**
 * Over SMTP when SMTP_URL is set: each message is queued in Postgres (mail/deliveries.ts)
 * and sent by the mail worker (mail/smtp-delivery.ts), so a page never waits for (or
 * reveals, by its timing, whether there was) a mail server round trip, and a message is not
 * lost while the server is down.
 */
function smtpMailer(db: Database, keys: () => Promise<KeyRing>): Mailer {
  return {
    mode: 'smtp',
    async send(mail) {
      await queueMail(db, await keys(), mail);
    },
  };
}

/**
 * Without SMTP (development, tests) each message goes to the outbox table and to the log at
 * info level, links included, so a developer can follow them. Never in production: there
 * SMTP_URL is set and messages are not logged.
 */
function outboxMailer(db: Database, logger: Logger): Mailer {
  return {
    mode: 'outbox',
    async send(mail) {
      await writeToOutbox(db, mail);
      logger.info(
        { mail: { to: mail.to, purpose: mail.purpose, subject: mail.subject, text: mail.text } },
        'mail written to the outbox (SMTP_URL is unset)',
      );
    },
  };
}

/** `keys`: the key ring that seals queued bodies (oidc/keys.ts cachedKeyRing). */
export function createMailer(config: Config, db: Database, logger: Logger, keys: () => Promise<KeyRing>): Mailer {
  return config.mail.smtpUrl ? smtpMailer(db, keys) : outboxMailer(db, logger);
}
