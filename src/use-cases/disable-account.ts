import { getAccount, setAccountDisabled } from '../accounts/store.js';
import { recordAuditEvent } from '../audit/log.js';
import { forgetPendingSignIns } from '../factors/pending-sign-ins.js';
import { auditActor, type Actor, type WorkflowDeps } from './deps.js';
import { signOutEverywhere } from './end-sessions.js';
import { tellConnectedServices } from './tell-services.js';

/**
 * An administrator disables an account (a compromised or disputed one): it can no longer
 * sign in, every session, code and token ends (services get back-channel logout), and
 * services that subscribed hear RISC account-disabled — in one transaction. Enabling it lets
 * it sign in again and tells them account-enabled. Doing either twice changes nothing.
 */
export async function setAccountEnabled(
  deps: WorkflowDeps,
  request: { accountId: string; enabled: boolean; actor: Actor },
): Promise<{ changed: boolean; told: string[] }> {
  const account = await getAccount(deps.db, request.accountId);
  return deps.db.transaction(async (tx) => {
    if (!(await setAccountDisabled(tx, account.id, !request.enabled))) return { changed: false, told: [] };
    let told: string[];
    if (request.enabled) {
      told = await tellConnectedServices(deps, tx, { accountId: account.id, name: 'account-enabled' });
    } else {
      told = await tellConnectedServices(deps, tx, { accountId: account.id, name: 'account-disabled' });
      await forgetPendingSignIns(tx, account.id);
      await signOutEverywhere(deps, tx, account.id);
    }
    await recordAuditEvent(tx, {
      event: request.enabled ? 'account.enabled' : 'account.disabled',
      outcome: 'success',
      ...auditActor(request.actor, account.id),
      details: { services: told.length },
    });
    return { changed: true, told };
  });
}
