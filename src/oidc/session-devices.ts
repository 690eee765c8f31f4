import Provider from 'oidc-provider';
import { recordSessionDevice } from '../accounts/session-devices.js';
import type { Database } from '../db/index.js';
import type { Logger } from '../logger.js';
import { networkPrefix } from '../security/client-address.js';
import { describeUserAgent } from '../security/user-agent.js';

/**
 * Keeps, for the Security page, the device behind each signed-in session: browser and system,
 * network prefix, first and last seen. oidc-provider saves a session at the end of every
 * request that used it; the request is read from its async context (Provider.ctx). Written
 * beside the response, never in its way; at most once a minute per session and process.
 */
export function trackSessionDevices(provider: Provider, db: Database, logger: Logger): void {
  const recentWrites = new Map<string, number>();
  provider.on('session.saved', (session) => {
    const accountId = session.accountId;
    const ctx = Provider.ctx;
    if (!accountId || !ctx) return;
    const key = `${session.uid}\0${accountId}`;
    const now = Date.now();
    if ((recentWrites.get(key) ?? 0) > now - 60_000) return;
    if (recentWrites.size > 10_000) recentWrites.clear();
    recentWrites.set(key, now);
    const device = describeUserAgent(ctx.get('user-agent') || undefined);
    recordSessionDevice(db, { sessionUid: session.uid, accountId, ...device, ipPrefix: networkPrefix(ctx.ip) }).catch((error: Error) =>
      logger.warn({ err: error.message }, 'could not record the device of a session'),
    );
  });
}
