import nodemailer from 'nodemailer';
import type { Config } from '../config.js';
import type { Database } from '../db/index.js';
import type { Language } from '../i18n/catalogue.js';
import type { Logger } from '../logger.js';
import type { MailPurpose } from './messages.js';
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
 * Over SMTP when SMTP_URL is set. The SMTP conversation is not awaited: a page must not wait
 * for (or reveal, by its timing, whether there was) a mail server round trip, and a failed
 * send is logged; the person can ask for the link again.
 */
function smtpMailer(config: Config, logger: Logger): Mailer {
  const transport = nodemailer.createTransport(config.mail.smtpUrl);
  return {
    mode: 'smtp',
    async send(mail) {
      transport
        .sendMail({ from: config.mail.from, to: mail.to, subject: mail.subject, text: mail.text })
        .then((info) => logger.info({ purpose: mail.purpose, messageId: info.messageId }, 'mail sent'))
        .catch((error: Error) => logger.warn({ purpose: mail.purpose, err: error.message }, 'mail could not be sent'));
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

export function createMailer(config: Config, db: Database, logger: Logger): Mailer {
  return config.mail.smtpUrl ? smtpMailer(config, logger) : outboxMailer(db, logger);
}
