import { translator, type Language } from '../i18n/catalogue.js';

export type MailPurpose =
  | 'verify_email'
  | 'change_email'
  | 'reset_password'
  | 'email_change_requested'
  | 'email_changed'
  | 'password_changed'
  | 'register_existing'
  | 'change_to_existing';

export interface MailContent {
  subject: string;
  text: string;
}

/** What each message needs filled in: the link it carries and, for expiring links, their lifetime. */
export interface MailValues {
  link: string;
  ttlSeconds?: number;
}

/** Plain-text mail (no HTML: nothing to escape, nothing to track), in the reader's language. */
export function composeMail(purpose: MailPurpose, language: Language, values: MailValues): MailContent {
  const t = translator(language);
  const hours = Math.max(1, Math.round((values.ttlSeconds ?? 0) / 3600));
  const minutes = Math.max(1, Math.round((values.ttlSeconds ?? 0) / 60));
  const days = Math.max(1, Math.round((values.ttlSeconds ?? 0) / 86400));
  const compose = (subject: string, lines: string[]): MailContent => ({
    subject,
    text: [t('mail.greeting'), '', ...lines, '', t('mail.signature'), ''].join('\n'),
  });
  switch (purpose) {
    case 'verify_email':
      return compose(t('mail.verify.subject'), [
        t('mail.verify.body'),
        values.link,
        '',
        t('mail.verify.expires', { hours }),
        t('mail.ignore'),
      ]);
    case 'change_email':
      return compose(t('mail.changeEmail.subject'), [
        t('mail.changeEmail.body'),
        values.link,
        '',
        t('mail.verify.expires', { hours }),
        t('mail.ignore'),
      ]);
    case 'reset_password':
      return compose(t('mail.reset.subject'), [
        t('mail.reset.body'),
        values.link,
        '',
        t('mail.reset.expires', { minutes }),
        t('mail.ignore'),
      ]);
    case 'email_change_requested':
      return compose(t('mail.emailChangeRequested.subject'), [t('mail.emailChangeRequested.body', { days }), values.link]);
    case 'email_changed':
      return compose(t('mail.emailChanged.subject'), [
        t('mail.emailChanged.body'),
        '',
        t('mail.emailChanged.revert', { days }),
        values.link,
      ]);
    case 'password_changed':
      return compose(t('mail.passwordChanged.subject'), [t('mail.passwordChanged.body'), values.link]);
    case 'register_existing':
      return compose(t('mail.registerExisting.subject'), [t('mail.registerExisting.body'), values.link, '', t('mail.ignore')]);
    case 'change_to_existing':
      return compose(t('mail.changeToExisting.subject'), [t('mail.changeToExisting.body'), values.link, '', t('mail.ignore')]);
  }
}
