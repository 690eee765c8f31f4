import { issueLinkToken, type LinkPurpose } from '../accounts/one-time-links.js';
import type { Language } from '../i18n/catalogue.js';
import { composeMail, type MailPurpose } from '../mail/messages.js';
import type { SelfServiceDeps } from './self-service.js';

/** The page each one-time link opens. */
const linkPaths: Record<LinkPurpose, string> = {
  verify_email: '/email/verify',
  change_email: '/email/change',
  reset_password: '/password/reset',
};

interface Recipient {
  to: string;
  accountId: string;
  language: Language;
}

/** Issues a one-time link of this purpose and mails it to `to`, in the reader's language. */
export async function sendLink(deps: SelfServiceDeps, purpose: LinkPurpose, recipient: Recipient): Promise<void> {
  const ttlSeconds = purpose === 'reset_password' ? deps.config.selfService.passwordResetTtl : deps.config.selfService.emailVerificationTtl;
  const token = await issueLinkToken(deps.db, {
    accountId: recipient.accountId,
    purpose,
    email: recipient.to,
    ttlSeconds,
    // Only the latest reset or change link works; verification links all verify the same address.
    replacePrevious: purpose !== 'verify_email',
  });
  const link = `${deps.config.issuer}${linkPaths[purpose]}?token=${token}`;
  await deps.mailer.send({ ...recipient, purpose, ...composeMail(purpose, recipient.language, { link, ttlSeconds }) });
}

/** A security notice without a one-time link; it points at the password-reset page. */
export async function sendNotice(deps: SelfServiceDeps, purpose: Exclude<MailPurpose, LinkPurpose>, recipient: Recipient): Promise<void> {
  const link = `${deps.config.issuer}/password/forgot`;
  await deps.mailer.send({ ...recipient, purpose, ...composeMail(purpose, recipient.language, { link }) });
}
