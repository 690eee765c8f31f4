import type { z } from 'zod';
import type { Translate } from '../i18n/catalogue.js';

type Issue = z.core.$ZodIssue;

/**
 * Domain schemas (passwords, emails, profiles) carry English messages for the CLI; pages
 * show the catalogue's words instead, chosen by the field and the kind of issue.
 */
export function describeIssue(t: Translate, issue: Issue): string {
  const field = String(issue.path[0] ?? '');
  const tooLong = issue.code === 'too_big';
  const tooShort = issue.code === 'too_small';
  switch (field) {
    case 'email':
    case 'newEmail':
      if (tooShort || issue.code === 'invalid_type') return t('validation.email.required');
      return tooLong ? t('validation.email.tooLong') : t('validation.email.invalid');
    case 'password':
    case 'newPassword':
      if (issue.code === 'invalid_type') return t('validation.password.required');
      if (tooShort) return t('validation.password.tooShort');
      if (tooLong) return t('validation.password.tooLong');
      return t('validation.password.common');
    case 'name':
      if (tooLong) return t('validation.name.tooLong');
      return tooShort ? t('validation.name.required') : t('validation.form');
    case 'givenName':
    case 'familyName':
      return tooLong && 'maximum' in issue ? t('validation.text.tooLong', { max: Number(issue.maximum) }) : t('validation.form');
    case 'locale':
      return t('validation.locale.invalid');
    case 'zoneinfo':
      return t('validation.zoneinfo.invalid');
    default:
      return t('validation.form');
  }
}

/** The first problem of a failed parse, with the field it belongs to (for aria-invalid). */
export function firstProblem(t: Translate, error: z.ZodError): { field: string | undefined; message: string } {
  const issue = error.issues[0];
  if (!issue) return { field: undefined, message: t('validation.form') };
  return { field: issue.path[0] === undefined ? undefined : String(issue.path[0]), message: describeIssue(t, issue) };
}
