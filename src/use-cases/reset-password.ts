import { credentialLinkPurposes, redeemLinkToken, spendOtherLinkTokens, type LinkFailure } from '../accounts/one-time-links.js';
import { hashPassword, passwordSchema } from '../accounts/passwords.js';
import { findAccountByEmail, storePasswordHash } from '../accounts/store.js';
import { recordAuditEvent } from '../audit/log.js';
import type { Language } from '../i18n/catalogue.js';
import { mailRequester, type MailRequester } from '../security/throttle.js';
import { parseOrThrow } from '../validation.js';
import type { WorkflowDeps } from './deps.js';
import { signOutEverywhere } from './end-sessions.js';
import { credentialChange, tellConnectedServices } from './tell-services.js';
import { mailLink, mailPerson } from './mail-person.js';

/**
 * Mails a reset link when the address has an account (and the mail limits allow), and does
 * nothing otherwise. Callers answer the same in both cases; the page runs this after its
 * response and outside the query metrics, so neither the answer's timing nor a metric says
 * which case it was.
 */
export async function requestPasswordReset(
  deps: WorkflowDeps,
  request: { email: string; requester: MailRequester; ip: string | null; language: Language },
): Promise<{ sent: boolean }> {
  const account = await findAccountByEmail(deps.db, request.email);
  if (!account) return { sent: false };
  const sent = await mailLink(
    deps,
    'reset_password',
    { to: account.email, accountId: account.id, language: request.language },
    request.requester,
  );
  await recordAuditEvent(deps.db, {
    event: 'password.reset_requested',
    outcome: sent ? 'success' : 'denied',
    actor: request.requester.key === 'admin' ? 'admin' : null,
    accountId: account.id,
    ip: request.ip,
  });
  return { sent };
}

export type PasswordResetResult = { status: 'reset'; accountId: string; email: string } | { status: LinkFailure };

/**
 * Sets a new password from a reset link, in one transaction: the link is spent, every other
 * pending link is void, services are told, and every session, code and token of the account
 * goes (account pages included). `newPassword` is validated here; argon2 runs first, outside
 * the transaction.
 */
export async function completePasswordReset(
  deps: WorkflowDeps,
  request: { token: unknown; newPassword: string; ip: string | null; language: Language },
): Promise<PasswordResetResult> {
  const passwordHash = await hashPassword(parseOrThrow(passwordSchema, request.newPassword));
  const result = await deps.db.transaction(async (tx): Promise<PasswordResetResult> => {
    const link = await redeemLinkToken(tx, request.token, 'reset_password');
    if (link.status !== 'valid') return link;
    await storePasswordHash(tx, link.accountId, passwordHash);
    await spendOtherLinkTokens(tx, link.accountId, credentialLinkPurposes);
    await signOutEverywhere(deps, tx, link.accountId);
    await tellConnectedServices(deps, tx, {
      accountId: link.accountId,
      name: 'credential-change',
      payload: credentialChange('password', 'update', { kind: 'self', ip: request.ip }),
    });
    await recordAuditEvent(tx, { event: 'password.reset', outcome: 'success', actor: link.accountId, ip: request.ip });
    return { status: 'reset', accountId: link.accountId, email: link.email };
  });
  if (result.status === 'reset') {
    await mailPerson(deps, {
      purpose: 'password_changed',
      recipient: { to: result.email, accountId: result.accountId, language: request.language },
      requester: mailRequester.owner(result.accountId),
    });
  }
  return result;
}
