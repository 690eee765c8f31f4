import { listAccountSessions } from '../accounts/account-sessions.js';
import { sessionDevicesOf } from '../accounts/session-devices.js';
import { factorsOf } from '../factors/summary.js';
import { claimsByScope } from '../accounts/claims.js';
import { listClaimReleases } from '../accounts/claim-releases.js';
import { importsOf } from '../accounts/imports.js';
import { eventsAbout } from '../events/deliveries.js';
import { nameOfEvent } from '../events/event-types.js';
import { listServiceUse } from '../accounts/service-usage.js';
import { findAccountById } from '../accounts/store.js';
import { listAccountEvents } from '../audit/sign-ins.js';
import type { Queryable } from '../db/index.js';
import { NotFound } from '../errors.js';
import { listGrantedServices, liveArtefacts } from '../oidc/artefacts.js';

/**
 * Everything held about an account, for its owner (right of access): profile, connected
 * services and what each receives and has received, the events sent to them, sessions, live tokens (kind and lifetime only, never a
 * value), pending links (never the token), security events and the mail kept in the
 * outbox (subject only: bodies hold links). The password hash is never included.
 */
export async function exportAccountData(db: Queryable, accountId: string) {
  const account = await findAccountById(db, accountId);
  if (!account) throw new NotFound('no such account');

  const services = await listGrantedServices(db, accountId);
  const artefacts = await liveArtefacts(db, accountId);
  const links = await db.query<{ purpose: string; email: string; created_at: Date; expires_at: Date; used_at: Date | null }>(
    'SELECT purpose, email, created_at, expires_at, used_at FROM account_tokens WHERE account_id = $1 ORDER BY created_at',
    [accountId],
  );
  const mail = await db.query<{ created_at: Date; purpose: string; recipient: string; subject: string }>(
    'SELECT created_at, purpose, recipient, subject FROM outbox WHERE account_id = $1 ORDER BY id',
    [accountId],
  );

  const epoch = (value: unknown) => (typeof value === 'number' ? new Date(value * 1000) : null);
  return {
    exportedAt: new Date(),
    account,
    connectedServices: services.map((service) => ({
      ...service,
      receives: service.scopes.flatMap((scope) => (scope in claimsByScope ? [...claimsByScope[scope as keyof typeof claimsByScope]] : [])),
    })),
    serviceUsage: await listServiceUse(db, accountId),
    // Which services' user stores the account was imported from, under which of their ids.
    importedFrom: await importsOf(db, accountId),
    // Which claims (names) each service has received, by route, first and last time.
    claimsReleased: await listClaimReleases(db, accountId),
    // The account events sent to each service, and whether the service accepted them.
    eventsSent: (await eventsAbout(db, accountId)).map((event) => ({
      clientId: event.clientId,
      event: nameOfEvent(event.eventType) ?? event.eventType,
      subject: event.subject,
      queuedAt: event.createdAt,
      status: event.status,
      accepted: event.status === 'delivered',
      finishedAt: event.finishedAt,
    })),
    signInSessions: artefacts
      .filter((row) => row.model === 'Session')
      .map((row) => ({
        signedInAt: epoch(row.payload['loginTs']),
        expiresAt: row.expiresAt,
        services: Object.keys((row.payload['authorizations'] as Record<string, unknown> | undefined) ?? {}),
      })),
    accountPageSessions: (await listAccountSessions(db, accountId)).map(({ handle: _handle, ...session }) => session),
    sessionDevices: [...(await sessionDevicesOf(db, accountId)).values()],
    signInFactors: await factorsOf(db, accountId),
    liveTokens: artefacts
      .filter((row) => row.model !== 'Session')
      .map((row) => ({ kind: row.model, clientId: row.clientId, issuedAt: epoch(row.payload['iat']), expiresAt: row.expiresAt })),
    links: links.rows.map((row) => ({
      purpose: row.purpose,
      sentTo: row.email,
      createdAt: row.created_at,
      expiresAt: row.expires_at,
      usedAt: row.used_at,
    })),
    securityEvents: await listAccountEvents(db, accountId),
    messages: mail.rows.map((row) => ({ createdAt: row.created_at, purpose: row.purpose, to: row.recipient, subject: row.subject })),
  };
}
