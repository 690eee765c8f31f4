import type Provider from 'oidc-provider';
import type { Database } from '../db/index.js';
import type { Logger } from '../logger.js';
import {
  claimDueDeliveries,
  enqueueLogoutDelivery,
  markAttemptFailed,
  markDelivered,
  onDeliveryQueued,
  type LogoutDelivery,
} from '../logout/deliveries.js';
import { retryDelaySeconds, startDeliveryLoop, type DeliveryWorker } from '../db/delivery-loop.js';
import { takeOverBackchannelLogout } from './internals.js';

export interface DeliveryOptions {
  pollSeconds: number;
  maxAgeSeconds: number;
  batchSize: number;
}

export type { DeliveryWorker };

/**
 * Makes back-channel logout durable. oidc-provider sends logout tokens inline while the
 * user waits on the logout page; here its per-client send only queues a row, and a worker
 * sends it with oidc-provider's own logout-token code (signed with our keys, SSRF-guarded
 * fetch with a timeout), retrying with backoff until maxAgeSeconds.
 * Also puts `sid` in every ID token (not only for back-channel clients), so services can
 * match logout tokens and sessions.
 */
export function installDurableBackchannelLogout(
  provider: Provider,
  db: Database,
  logger: Logger,
  options: DeliveryOptions,
): DeliveryWorker {
  const sendLogoutToken = takeOverBackchannelLogout(provider, async function queueLogoutToken(accountId, sid) {
    await enqueueLogoutDelivery(db, { issuer: provider.issuer, clientId: this.clientId, accountId, sid, reason: 'session_ended' });
  });

  async function deliver(delivery: LogoutDelivery): Promise<void> {
    const client = await provider.Client.find(delivery.clientId);
    try {
      if (!client?.backchannelLogoutUri) throw new Error('the service no longer has a back-channel logout URI');
      if (!delivery.accountId) throw new Error('delivery has no subject');
      await sendLogoutToken.call(client, delivery.accountId, delivery.sid ?? undefined);
      await markDelivered(db, delivery.id);
      provider.emit('backchannel.success', undefined, client, delivery.accountId, delivery.sid);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      const status = await markAttemptFailed(db, delivery.id, message, retryDelaySeconds(delivery.attempts), options.maxAgeSeconds);
      logger.warn({ clientId: delivery.clientId, attempts: delivery.attempts, status, err: message }, 'back-channel logout attempt failed');
      if (status === 'failed' && client) provider.emit('backchannel.error', undefined, error, client, delivery.accountId, delivery.sid);
    }
  }

  return startDeliveryLoop({
    what: 'back-channel logout',
    claim: (limit) => claimDueDeliveries(db, provider.issuer, limit, 30),
    deliver,
    batchSize: options.batchSize,
    pollSeconds: options.pollSeconds,
    onQueued: onDeliveryQueued,
    logger,
  });
}
