import { translator, type Language } from '../i18n/catalogue.js';

export type MailPurpose =
  | 'verify_email'
  | 'change_email'
  | 'reset_password'
  | 'email_change_requested'
  | 'email_changed'
  | 'password_changed'
  | 'register_existing'
  | 'change_to_existing'
  | 'factor_added'
  | 'factor_removed'
  | 'recovery_codes_regenerated'
  | 'recovery_code_used'
  | 'factors_reset';

/** The sign-in factor a security notice is about. */
export type FactorDescription = { kind: 'passkey'; name: string } | { kind: 'totp' };

export interface MailContent {
  subject: string;
  text: string;
}

/** What each message needs filled in: the link it carries and, for expiring links, their lifetime. */
export interface MailValues {
  link: string;
  ttlSeconds?: number;
  /** For notices about sign-in factors. */
  factor?: FactorDescription;
  /** Recovery codes left, after one was used. */
  remaining?: number;
}

/** Plain-text mail (no HTML: nothing to escape, nothing to track), in the reader's language. */
export function composeMail(purpose: MailPurpose, language: Language, values: MailValues): MailContent {
  const t = translator(language);
  const hours = Math.max(1, Math.round((values.ttlSeconds ?? 0) / 3600));
  const minutes = Math.max(1, Math.round((values.ttlSeconds ?? 0) / 60));
  const days = Math.max(1, Math.round((values.ttlSeconds ?? 0) / 86400));
  const factorName = () =>
    values.factor?.kind === 'passkey' ? t('mail.factor.passkey', { name: values.factor.name }) : t('mail.factor.totp');
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
    case 'factor_added':
      return compose(t('mail.factorAdded.subject'), [
        t('mail.factorAdded.body', { factor: factorName() }),
        '',
        t('mail.notYou'),
        values.link,
      ]);
    case 'factor_removed':
      return compose(t('mail.factorRemoved.subject'), [
        t('mail.factorRemoved.body', { factor: factorName() }),
        '',
        t('mail.notYou'),
        values.link,
      ]);
    case 'recovery_codes_regenerated':
      return compose(t('mail.recoveryCodesRegenerated.subject'), [
        t('mail.recoveryCodesRegenerated.body'),
        '',
        t('mail.notYou'),
        values.link,
      ]);
    case 'recovery_code_used':
      return compose(t('mail.recoveryCodeUsed.subject'), [
        t('mail.recoveryCodeUsed.body', { remaining: values.remaining ?? 0 }),
        '',
        t('mail.notYou'),
        values.link,
      ]);
    case 'factors_reset':
      return compose(t('mail.factorsReset.subject'), [t('mail.factorsReset.body'), '', t('mail.notYou'), values.link]);
  }
}
