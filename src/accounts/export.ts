import { listAccountEvents } from '../audit/sign-ins.js';
import type { Queryable } from '../db/index.js';
import { NotFound } from '../errors.js';
import { listAccountSessions } from './account-sessions.js';
import { claimsByScope } from './claims.js';
import { listConnectedServices } from './connections.js';
import { findAccountById } from './store.js';

/**
 * Everything held about an account, for its owner (right of access): profile, connected
 * services and what each receives, sessions, live tokens (kind and lifetime only, never a
 * value), pending links (never the token), security events and the mail kept in the
 * outbox (subject only: bodies hold links). The password hash is never included.
 */
export async function exportAccountData(db: Queryable, accountId: string) {
  const account = await findAccountById(db, accountId);
  if (!account) throw new NotFound('no such account');

  const services = await listConnectedServices(db, accountId);
  const artefacts = await db.query<{ model: string; client_id: string | null; payload: Record<string, unknown>; expires_at: Date | null }>(
    `SELECT model, client_id, payload, expires_at FROM oidc_payloads
     WHERE account_id = $1 AND model IN ('Session', 'AccessToken', 'RefreshToken', 'AuthorizationCode')
       AND (expires_at IS NULL OR expires_at > now())
     ORDER BY model, expires_at`,
    [accountId],
  );
  const links = await db.query<{ purpose: string; email: string; created_at: Date; expires_at: Date; used_at: Date | null }>(
    'SELECT purpose, email, created_at, expires_at, used_at FROM account_tokens WHERE account_id = $1 ORDER BY created_at',
    [accountId],
  );
  const mail = await db.query<{ created_at: Date; purpose: string; recipient: string; subject: string }>(
    'SELECT created_at, purpose, recipient, subject FROM outbox WHERE account_id = $1 ORDER BY id',
    [accountId],
  );
  const usage = await db.query<{ client_id: string; first_used_at: Date; last_used_at: Date }>(
    'SELECT client_id, first_used_at, last_used_at FROM service_usage WHERE account_id = $1 ORDER BY client_id',
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
    serviceUsage: usage.rows.map((row) => ({ clientId: row.client_id, firstUsedAt: row.first_used_at, lastUsedAt: row.last_used_at })),
    signInSessions: artefacts.rows
      .filter((row) => row.model === 'Session')
      .map((row) => ({
        signedInAt: epoch(row.payload['loginTs']),
        expiresAt: row.expires_at,
        services: Object.keys((row.payload['authorizations'] as Record<string, unknown> | undefined) ?? {}),
      })),
    accountPageSessions: await listAccountSessions(db, accountId),
    liveTokens: artefacts.rows
      .filter((row) => row.model !== 'Session')
      .map((row) => ({ kind: row.model, clientId: row.client_id, issuedAt: epoch(row.payload['iat']), expiresAt: row.expires_at })),
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
