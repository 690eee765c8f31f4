import { forgetServiceUse } from '../accounts/service-usage.js';
import { recordAuditEvent } from '../audit/log.js';
import { deleteServiceGrants } from '../oidc/artefacts.js';
import { notifyLogout } from '../oidc/logout-notices.js';
import { auditActor, type Actor, type WorkflowDeps } from './deps.js';

/**
 * Disconnects a service from an account, in one transaction: its grants go with every code
 * and token issued under them, the usage dates go, and the service is told of the sessions
 * this ends for it (a back-channel logout). False when the service held no grant.
 */
export async function disconnectService(
  deps: WorkflowDeps,
  request: { accountId: string; clientId: string; actor: Actor },
): Promise<boolean> {
  return deps.db.transaction(async (tx) => {
    if (!(await deleteServiceGrants(tx, request.accountId, request.clientId))) return false;
    // Sessions are not touched by removing grants, so the notice still finds the sids it names.
    await notifyLogout(
      { db: tx, provider: deps.provider },
      { accountId: request.accountId, clientIds: [request.clientId], reason: 'grant_revoked' },
    );
    await forgetServiceUse(tx, request.accountId, request.clientId);
    await recordAuditEvent(tx, {
      event: 'grant.revoked',
      outcome: 'success',
      clientId: request.clientId,
      ...auditActor(request.actor, request.accountId),
    });
    return true;
  });
}
