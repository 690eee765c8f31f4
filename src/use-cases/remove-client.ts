import { recordAuditEvent } from '../audit/log.js';
import { deleteClientRow } from '../clients/store.js';
import { deleteClientArtefacts } from '../oidc/artefacts.js';
import type { WorkflowDeps } from './deps.js';

/** Removes a service and everything issued to it (grants, codes, tokens) in one transaction. */
export async function removeClient(deps: Pick<WorkflowDeps, 'db'>, clientId: string): Promise<void> {
  await deps.db.transaction(async (tx) => {
    await deleteClientRow(tx, clientId);
    await deleteClientArtefacts(tx, clientId);
    await recordAuditEvent(tx, { event: 'client.removed', outcome: 'success', actor: 'admin', clientId });
  });
}
