import { credentialLinkPurposes, spendOtherLinkTokens } from '../accounts/one-time-links.js';
import { hashPassword, passwordSchema } from '../accounts/passwords.js';
import { getAccount, storePasswordHash } from '../accounts/store.js';
import { recordAuditEvent } from '../audit/log.js';
import type { Language } from '../i18n/catalogue.js';
import { mailRequester } from '../security/throttle.js';
import { parseOrThrow } from '../validation.js';
import { auditActor, type Actor, type WorkflowDeps } from './deps.js';
import { signOutEverywhere } from './end-sessions.js';
import { mailPerson } from './mail-person.js';
import { credentialChange, tellConnectedServices } from './tell-services.js';

/**
 * Sets a new password: by the person (current password already checked by the page), or by
 * an administrator. Either way, in one transaction: services are told their sessions ended,
 * every session, code and token goes, every other account-page session ends (the one making
 * the change stays, `keepAccountSession`), and every pending verification, email-change and
 * reset link is void. Then the audit event and a notice to the person.
 */
export async function changePassword(
  deps: WorkflowDeps,
  request: { accountId: string; newPassword: string; actor: Actor; language: Language; keepAccountSession?: string },
): Promise<void> {
  const password = parseOrThrow(passwordSchema, request.newPassword);
  const account = await getAccount(deps.db, request.accountId);
  // argon2 before the transaction: a transaction is never held open while it runs.
  const passwordHash = await hashPassword(password);
  await deps.db.transaction(async (tx) => {
    await storePasswordHash(tx, account.id, passwordHash);
    await spendOtherLinkTokens(tx, account.id, credentialLinkPurposes);
    await signOutEverywhere(deps, tx, account.id, request.keepAccountSession);
    await tellConnectedServices(deps, tx, {
      accountId: account.id,
      name: 'credential-change',
      payload: credentialChange('password', 'update', request.actor),
    });
    await recordAuditEvent(tx, { event: 'password.changed', outcome: 'success', ...auditActor(request.actor, account.id) });
  });
  await mailPerson(deps, {
    purpose: 'password_changed',
    recipient: { to: account.email, accountId: account.id, language: request.language },
    requester: request.actor.kind === 'self' ? mailRequester.owner(account.id) : mailRequester.admin(),
  });
}
