import type Provider from 'oidc-provider';
import type { Queryable } from '../db/index.js';
import { enqueueLogoutDelivery, type LogoutReason } from '../logout/deliveries.js';
import { sessionIdsByClient } from './artefacts.js';

/**
 * Queues back-channel logout tokens telling services that an account's sessions with them
 * ended. Sessions are looked up now, so call this before deleting them. A revoked grant is
 * announced only to services that have a session; a deleted account is announced to every
 * listed service (with `sub` only when it has no session). Delivery failures never surface
 * here: the worker retries and records them. Pass a transaction as `db` to queue the
 * notices atomically with the change they announce.
 */
export async function notifyLogout(
  deps: { db: Queryable; provider: Provider },
  request: { accountId: string; clientIds: string[]; reason: Extract<LogoutReason, 'grant_revoked' | 'account_deleted' | 'session_ended'> },
): Promise<void> {
  const sids = await sessionIdsByClient(deps.db, request.accountId, request.clientIds);
  for (const clientId of new Set(request.clientIds)) {
    const client = await deps.provider.Client.find(clientId);
    if (!client?.backchannelLogoutUri) continue;
    const clientSids = sids.get(clientId) ?? [];
    if (clientSids.length === 0 && request.reason !== 'account_deleted') continue;
    for (const sid of clientSids.length ? clientSids : [null]) {
      await enqueueLogoutDelivery(deps.db, {
        issuer: deps.provider.issuer,
        clientId,
        accountId: request.accountId,
        sid,
        reason: request.reason,
      });
    }
  }
}
