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
  // "Last used" is shown to the minute, so one write per (account, service) a minute per process
  // is enough; each write remembers the grant it was made with.
  const recentWrites = new Map<string, { at: number; grantId: string | undefined }>();
  const write = (key: string, accountId: string, clientId: string, grantId: string | undefined) => {
    if (recentWrites.size > 10_000) recentWrites.clear();
    recentWrites.set(key, { at: Date.now(), grantId });
    recordServiceUse(db, accountId, clientId).catch((error: Error) => {
      recentWrites.delete(key);
      logger.warn({ err: error.message }, 'could not record service use');
    });
  };
  const writtenWithin = (key: string, ms: number) => {
    const last = recentWrites.get(key);
    return last !== undefined && last.at > Date.now() - ms ? last : undefined;
  };
  provider.on('grant.success', (ctx) => {
    const accountId = ctx.oidc.account?.accountId;
    const clientId = ctx.oidc.client?.clientId;
    if (!accountId || !clientId) return;
    const key = `${accountId}\0${clientId}`;
    if (writtenWithin(key, 60_000)) return;
    write(key, accountId, clientId, ctx.oidc.grant?.jti);
  });
  // A disconnect (on any instance) deletes the dates and revokes the grant, so the next
  // sign-in to the service comes with another grant: that one always writes. A sign-in with
  // the grant of the last write is an SSO hop like the others.
  provider.on('authorization.success', (ctx) => {
    const accountId = ctx.oidc.session?.accountId;
    const clientId = ctx.oidc.client?.clientId;
    if (!accountId || !clientId) return;
    const key = `${accountId}\0${clientId}`;
    const grantId = ctx.oidc.grant?.jti;
    if (grantId !== undefined && writtenWithin(key, 60_000)?.grantId === grantId) return;
    write(key, accountId, clientId, grantId);
  });
}
