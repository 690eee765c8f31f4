import type Provider from 'oidc-provider';
import { recordServiceUse } from '../accounts/service-usage.js';
import type { Database } from '../db/index.js';
import type { Logger } from '../logger.js';

/**
 * Keeps "first and last used" of each (account, service) for the account pages: a sign-in
 * that reaches the service (authorization.success) or a token it obtains for the person
 * (grant.success, including refreshes). Written after the response, never in its way.
 */
export function trackServiceUsage(provider: Provider, db: Database, logger: Logger): void {
  // "Last used" is shown to the minute: one write per (account, service) a minute per
  // process is enough and keeps a statement off most token requests (bench/RESULTS.md).
  const recentlyRecorded = new Map<string, number>();
  const record = (accountId: string | undefined, clientId: string | undefined) => {
    if (!accountId || !clientId) return;
    const key = `${accountId}\0${clientId}`;
    const now = Date.now();
    if ((recentlyRecorded.get(key) ?? 0) > now - 60_000) return;
    if (recentlyRecorded.size > 10_000) recentlyRecorded.clear();
    recentlyRecorded.set(key, now);
    recordServiceUse(db, accountId, clientId).catch((error: Error) => logger.warn({ err: error.message }, 'could not record service use'));
  };
  provider.on('authorization.success', (ctx) => record(ctx.oidc.session?.accountId, ctx.oidc.client?.clientId));
  provider.on('grant.success', (ctx) => record(ctx.oidc.account?.accountId, ctx.oidc.client?.clientId));
}
