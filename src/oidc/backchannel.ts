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
import { takeOverBackchannelLogout } from './internals.js';

export interface DeliveryOptions {
  pollSeconds: number;
  maxAgeSeconds: number;
  batchSize: number;
}

export interface DeliveryWorker {
  /** Delivers what is due now (also runs on a timer and whenever something is queued). */
  runOnce(): Promise<number>;
  stop(): Promise<void>;
}

/** 1 s, 2 s, 4 s … capped at one minute between attempts. */
export const retryDelaySeconds = (attempts: number) => Math.min(2 ** Math.max(attempts - 1, 0), 60);

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
    await enqueueLogoutDelivery(db, { clientId: this.clientId, accountId, sid, reason: 'session_ended' });
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

  let running: Promise<number> | undefined;
  let stopped = false;
  async function runOnce(): Promise<number> {
    if (running) return running;
    running = (async () => {
      let delivered = 0;
      for (;;) {
        const due = await claimDueDeliveries(db, options.batchSize, 30);
        if (due.length === 0 || stopped) return delivered;
        await Promise.all(due.map(deliver));
        delivered += due.length;
      }
    })().finally(() => {
      running = undefined;
    });
    return running;
  }

  const runQuietly = () => {
    if (stopped) return;
    runOnce().catch((error: Error) => logger.warn({ err: error.message }, 'back-channel delivery run failed; will retry'));
  };
  const timer = setInterval(runQuietly, options.pollSeconds * 1000);
  timer.unref();
  const unsubscribe = onDeliveryQueued(() => setImmediate(runQuietly));

  return {
    runOnce,
    async stop() {
      stopped = true;
      clearInterval(timer);
      unsubscribe();
      await running?.catch(() => undefined);
    },
  };
}
