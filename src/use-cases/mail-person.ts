import { issueLinkToken, type LinkPurpose } from '../accounts/one-time-links.js';
import type { Queryable } from '../db/index.js';
import type { Language } from '../i18n/catalogue.js';
import { composeMail, type MailPurpose, type MailValues } from '../mail/messages.js';
import type { MailRequester } from '../security/throttle.js';
import type { WorkflowDeps } from './deps.js';

/** The page each one-time link opens. */
const linkPaths: Record<LinkPurpose, string> = {
  verify_email: '/email/verify',
  change_email: '/email/change',
  reset_password: '/password/reset',
  revert_email_change: '/email/revert',
};

export interface Recipient {
  to: string;
  accountId: string;
  language: Language;
}

function linkLifetime(deps: WorkflowDeps, purpose: LinkPurpose): number {
  const { selfService } = deps.config;
  if (purpose === 'reset_password') return selfService.passwordResetTtl;
  if (purpose === 'revert_email_change') return selfService.emailChangeRevertTtl;
  return selfService.emailVerificationTtl;
}

/**
 * Every message to a person goes through here, so every kind is limited in one place
 * (Throttle.allowMail: per recipient and requester, and a cap per recipient for what others
 * ask). A message over the limit is not sent and false comes back; callers answer the
 * person the same either way. With `link`, a one-time link is issued first (only its digest
 * is kept) and carried by the message; `db` lets it be issued in the caller's transaction.
 */
export async function mailPerson(
  deps: WorkflowDeps,
  message: {
    purpose: MailPurpose;
    link?: LinkPurpose;
    recipient: Recipient;
    requester: MailRequester;
    db?: Queryable;
    /** What a notice about sign-in factors names. */
    details?: Pick<MailValues, 'factor' | 'remaining'>;
  },
): Promise<boolean> {
  const { recipient } = message;
  if (!(await deps.throttle.allowMail(message.purpose, recipient.to, message.requester))) {
    deps.logger.info({ purpose: message.purpose }, 'mail not sent: limit for this recipient reached');
    return false;
  }
  let link = `${deps.config.issuer}/password/forgot`;
  let ttlSeconds: number | undefined;
  if (message.link) {
    ttlSeconds = linkLifetime(deps, message.link);
    const token = await issueLinkToken(message.db ?? deps.db, {
      accountId: recipient.accountId,
      purpose: message.link,
      email: recipient.to,
      ttlSeconds,
      // Only the latest reset or change link works; verification and revert links all lead to the same result.
      replacePrevious: message.link === 'reset_password' || message.link === 'change_email',
    });
    link = `${deps.config.issuer}${linkPaths[message.link]}?token=${token}`;
  }
  await deps.mailer.send({
    ...recipient,
    purpose: message.purpose,
    ...composeMail(message.purpose, recipient.language, { link, ttlSeconds, ...message.details }),
  });
  return true;
}

/** A one-time link of this purpose, mailed in a message of the same name. */
export function mailLink(
  deps: WorkflowDeps,
  purpose: Extract<LinkPurpose, MailPurpose>,
  recipient: Recipient,
  requester: MailRequester,
): Promise<boolean> {
  return mailPerson(deps, { purpose, link: purpose, recipient, requester });
}
