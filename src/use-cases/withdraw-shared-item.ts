import { recordAuditEvent } from '../audit/log.js';
import { listGrantedServices, withdrawGrantedScope } from '../oidc/artefacts.js';
import { auditActor, type Actor, type WorkflowDeps } from './deps.js';

/**
 * Stops sharing one optional item (a scope the service may do without) with a service,
 * keeping the service connected: tokens issued from now on, refreshed ones included, lack
 * it, and the service asks again if it wants it. False when there was nothing to withdraw
 * (not shared, or a required item: withdrawing that means disconnecting the service).
 */
export async function withdrawSharedItem(
  deps: Pick<WorkflowDeps, 'db'>,
  request: { accountId: string; clientId: string; scope: string; actor: Actor },
): Promise<boolean> {
  return deps.db.transaction(async (tx) => {
    const service = (await listGrantedServices(tx, request.accountId)).find((granted) => granted.clientId === request.clientId);
    if (!service?.optionalScopes.includes(request.scope)) return false;
    if (!(await withdrawGrantedScope(tx, request.accountId, request.clientId, request.scope))) return false;
    await recordAuditEvent(tx, {
      event: 'consent.withdrawn',
      outcome: 'success',
      clientId: request.clientId,
      ...auditActor(request.actor, request.accountId),
      details: { scopes: [request.scope] },
    });
    return true;
  });
}
