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
  const write = (accountId: string, clientId: string) =>
    recordServiceUse(db, accountId, clientId).catch((error: Error) => logger.warn({ err: error.message }, 'could not record service use'));
  // Token requests are the frequent kind: "last used" is shown to the minute, so one write per
  // (account, service) a minute per process is enough for them (bench/RESULTS.md).
  const recentTokenWrites = new Map<string, number>();
  provider.on('grant.success', (ctx) => {
    const accountId = ctx.oidc.account?.accountId;
    const clientId = ctx.oidc.client?.clientId;
    if (!accountId || !clientId) return;
    const key = `${accountId}\0${clientId}`;
    const now = Date.now();
    if ((recentTokenWrites.get(key) ?? 0) > now - 60_000) return;
    if (recentTokenWrites.size > 10_000) recentTokenWrites.clear();
    recentTokenWrites.set(key, now);
    void write(accountId, clientId);
  });
  // A sign-in always writes: after a disconnect (which deletes the dates, possibly on another
  // instance) the next sign-in must record them again, however soon it comes.
  provider.on('authorization.success', (ctx) => {
    const accountId = ctx.oidc.session?.accountId;
    const clientId = ctx.oidc.client?.clientId;
    if (accountId && clientId) void write(accountId, clientId);
  });
}
