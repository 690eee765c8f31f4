import { deleteAccountRow } from '../accounts/store.js';
import { forgetAccountEvents, recordAuditEvent } from '../audit/log.js';
import { connectedClientIds, deleteAccountArtefacts } from '../oidc/artefacts.js';
import { notifyLogout } from '../oidc/logout-notices.js';
import { forgetEventsAbout } from '../events/deliveries.js';
import type { Actor, WorkflowDeps } from './deps.js';
import { tellConnectedServices } from './tell-services.js';

/**
 * Deletes an account, by the person or an administrator, in one transaction: every service
 * that knew the person is told (the notices are queued before the rows they describe go),
 * (by back-channel logout, and account-purged on the event streams they subscribed), then
 * the account, its sessions, grants, codes, tokens, links, account-page sessions, mail
 * and usage dates, and every audit event about it. What remains is one record that an
 * account was deleted, with its opaque id and no email, name, IP or browser.
 */
export async function deleteAccount(
  deps: WorkflowDeps,
  request: { accountId: string; actor: Actor },
): Promise<{ notified: string[]; toldOfDeletion: string[] }> {
  return deps.db.transaction(async (tx) => {
    const clientIds = await connectedClientIds(tx, request.accountId);
    await notifyLogout({ db: tx, provider: deps.provider }, { accountId: request.accountId, clientIds, reason: 'account_deleted' });
    // Queued with each service's own sub before the account goes: the event outlives it.
    const toldOfDeletion = await tellConnectedServices(deps, tx, { accountId: request.accountId, name: 'account-purged', clientIds });
    await deleteAccountArtefacts(tx, request.accountId);
    await forgetAccountEvents(tx, request.accountId);
    await forgetEventsAbout(tx, request.accountId);
    await deleteAccountRow(tx, request.accountId);
    await recordAuditEvent(tx, {
      event: 'account.deleted',
      outcome: 'success',
      actor: request.actor.kind === 'self' ? request.accountId : 'admin',
      accountId: request.accountId,
      details: { services: clientIds.length, by: request.actor.kind },
    });
    return { notified: clientIds, toldOfDeletion };
  });
}
