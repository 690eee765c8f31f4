import type { Queryable } from '../db/index.js';
import { storedId } from './adapter.js';
import { withholdScopeIn, type GrantScopes } from './grants.js';

/**
 * Every statement over oidc-provider's storage table that is not the adapter's own: the
 * questions the account pages, the CLI and the workflows ask about sessions, grants and
 * tokens, and the deletions they make. Rows carry account_id, client_id, grant_id and uid
 * beside the payload (adapter.ts), and credential-keyed rows are stored under digests.
 */

const live = '(expires_at IS NULL OR expires_at > now())';

// --- Grants and the services that hold them ---

export interface GrantedService {
  clientId: string;
  name: string;
  /** Every scope the person granted this service, across its grants (not those declined or withdrawn since). */
  scopes: string[];
  /** The scopes the service may do without (idp clients --optional-scope): the person can withdraw these. */
  optionalScopes: string[];
  firstUsedAt: Date;
  lastUsedAt: Date | null;
}

/** Services holding a live grant from the account, with when they were first and last used. */
export async function listGrantedServices(db: Queryable, accountId: string): Promise<GrantedService[]> {
  const { rows } = await db.query<{
    client_id: string;
    name: string | null;
    optional_scopes: unknown;
    scopes: (string | null)[];
    rejected: (string | null)[];
    granted_at: Date | null;
    first_used_at: Date | null;
    last_used_at: Date | null;
  }>(
    `SELECT g.client_id, c.metadata->>'client_name' AS name, c.metadata->'optional_scopes' AS optional_scopes,
            array_agg(g.payload->'openid'->>'scope') AS scopes,
            array_agg(g.payload->'rejected'->'openid'->>'scope') AS rejected,
            min(to_timestamp((g.payload->>'iat')::bigint)) AS granted_at,
            u.first_used_at, u.last_used_at
     FROM oidc_payloads g
     JOIN clients c ON c.id = g.client_id
     LEFT JOIN service_usage u ON u.account_id = g.account_id AND u.client_id = g.client_id
     WHERE g.model = 'Grant' AND g.account_id = $1 AND (g.expires_at IS NULL OR g.expires_at > now())
     GROUP BY g.client_id, c.metadata->>'client_name', c.metadata->'optional_scopes', u.first_used_at, u.last_used_at
     ORDER BY lower(coalesce(c.metadata->>'client_name', g.client_id)), g.client_id`,
    [accountId],
  );
  const words = (values: (string | null)[]) => new Set(values.flatMap((value) => (value ?? '').split(' ')).filter(Boolean));
  return rows.map((row) => {
    const candidates = [row.granted_at, row.first_used_at].filter((date): date is Date => date instanceof Date);
    const rejected = words(row.rejected);
    return {
      clientId: row.client_id,
      name: row.name ?? row.client_id,
      scopes: [...words(row.scopes)].filter((scope) => scope === 'openid' || !rejected.has(scope)),
      optionalScopes: Array.isArray(row.optional_scopes)
        ? row.optional_scopes.filter((scope): scope is string => typeof scope === 'string')
        : [],
      firstUsedAt: new Date(Math.min(...candidates.map((date) => date.getTime()))),
      lastUsedAt: row.last_used_at,
    };
  });
}

/** The newest live grant of the account to a service, given in whatever session. */
export async function latestGrantId(db: Queryable, accountId: string, clientId: string): Promise<string | undefined> {
  const { rows } = await db.query<{ id: string }>(
    `SELECT id FROM oidc_payloads WHERE model = 'Grant' AND account_id = $1 AND client_id = $2 AND ${live}
     ORDER BY (payload->>'iat')::bigint DESC LIMIT 1`,
    [accountId, clientId],
  );
  return rows[0]?.id;
}

/** Services the account has a live sign-in session with. */
export async function sessionClientIds(db: Queryable, accountId: string): Promise<string[]> {
  const { rows } = await db.query<{ client_id: string }>(
    `SELECT DISTINCT auth.key AS client_id
     FROM oidc_payloads, jsonb_each(coalesce(payload->'authorizations', '{}'::jsonb)) AS auth
     WHERE model = 'Session' AND account_id = $1 AND ${live}`,
    [accountId],
  );
  return rows.map((row) => row.client_id);
}

/** Every service that holds a grant or a session of the account. */
export async function connectedClientIds(db: Queryable, accountId: string): Promise<string[]> {
  const { rows } = await db.query<{ client_id: string }>(
    `SELECT DISTINCT client_id FROM oidc_payloads WHERE model = 'Grant' AND account_id = $1 AND client_id IS NOT NULL`,
    [accountId],
  );
  return [...new Set([...rows.map((row) => row.client_id), ...(await sessionClientIds(db, accountId))])];
}

/**
 * Withdraws one scope from every grant of the account to a service, in the caller's
 * transaction (rows locked), and from the live access and refresh tokens issued under them:
 * a resource server introspecting a token issued before the withdrawal is told the narrower
 * scope (the change notices of migrations/0026 drop every instance's copy of those rows).
 * False when the service held no grant with that scope.
 */
export async function withdrawGrantedScope(tx: Queryable, accountId: string, clientId: string, scope: string): Promise<boolean> {
  const { rows } = await tx.query<{ id: string; payload: GrantScopes }>(
    `SELECT id, payload FROM oidc_payloads WHERE model = 'Grant' AND account_id = $1 AND client_id = $2 AND ${live} FOR UPDATE`,
    [accountId, clientId],
  );
  const holding = rows.filter((row) => (row.payload.openid?.scope ?? '').split(' ').includes(scope));
  for (const row of holding) {
    withholdScopeIn(row.payload, scope);
    await tx.query(`UPDATE oidc_payloads SET payload = $3 WHERE model = 'Grant' AND id = $1 AND account_id = $2`, [
      row.id,
      accountId,
      row.payload,
    ]);
  }
  if (holding.length === 0) return false;
  await tx.query(
    `UPDATE oidc_payloads
        SET payload = jsonb_set(payload, '{scope}', to_jsonb(array_to_string(array_remove(string_to_array(payload->>'scope', ' '), $3), ' ')))
      WHERE grant_id = ANY($1::text[]) AND account_id = $2 AND model IN ('AccessToken', 'RefreshToken')
        AND string_to_array(payload->>'scope', ' ') @> ARRAY[$3::text] AND ${live}`,
    [holding.map((row) => row.id), accountId, scope],
  );
  return true;
}

/**
 * Removes the account's grants to a service and every code and token issued under them
 * (rows sharing the grant_id; a Grant row carries its own id there). False when there were none.
 */
export async function deleteServiceGrants(tx: Queryable, accountId: string, clientId: string): Promise<boolean> {
  const { rows } = await tx.query<{ id: string }>(
    `SELECT id FROM oidc_payloads WHERE model = 'Grant' AND account_id = $1 AND client_id = $2`,
    [accountId, clientId],
  );
  if (rows.length === 0) return false;
  await tx.query('DELETE FROM oidc_payloads WHERE grant_id = ANY($1::text[])', [rows.map((row) => row.id)]);
  return true;
}

// --- Sessions ---

export interface StoredSession {
  /** The session's public handle (not the cookie value, which is stored only as a digest). */
  uid: string;
  accountId: string;
  signedInAt: Date | null;
  expiresAt: Date | null;
  services: { clientId: string; sid: string }[];
}

interface SessionRow {
  uid: string;
  account_id: string;
  payload: { loginTs?: number; authorizations?: Record<string, { sid?: string }> };
  expires_at: Date | null;
  [key: string]: unknown;
}

const toStoredSession = (row: SessionRow): StoredSession => ({
  uid: row.uid,
  accountId: row.account_id,
  signedInAt: row.payload.loginTs ? new Date(row.payload.loginTs * 1000) : null,
  expiresAt: row.expires_at,
  services: Object.entries(row.payload.authorizations ?? {}).map(([clientId, authorization]) => ({
    clientId,
    sid: authorization.sid ?? '',
  })),
});

/** The account's live sessions and the services each one signed in to. */
export async function listSessions(db: Queryable, accountId: string): Promise<StoredSession[]> {
  const { rows } = await db.query<SessionRow>(
    `SELECT uid, account_id, payload, expires_at FROM oidc_payloads
     WHERE model = 'Session' AND account_id = $1 AND ${live}
     ORDER BY expires_at DESC NULLS LAST`,
    [accountId],
  );
  return rows.map(toStoredSession);
}

/** Deletes one session by its handle and returns what it was; undefined when there is none. */
export async function deleteSessionByUid(tx: Queryable, uid: string): Promise<StoredSession | undefined> {
  const { rows } = await tx.query<SessionRow>(
    `DELETE FROM oidc_payloads WHERE model = 'Session' AND uid = $1 RETURNING uid, account_id, payload, expires_at`,
    [uid],
  );
  return rows[0] && toStoredSession(rows[0]);
}

/** The session ids (`sid`) under which each of these services knows the account's sessions. */
export async function sessionIdsByClient(db: Queryable, accountId: string, clientIds: string[]): Promise<Map<string, string[]>> {
  const { rows } = await db.query<{ client_id: string; sid: string }>(
    `SELECT auth.key AS client_id, auth.value->>'sid' AS sid
     FROM oidc_payloads, jsonb_each(payload->'authorizations') AS auth
     WHERE model = 'Session' AND account_id = $1 AND auth.key = ANY($2::text[]) AND ${live}`,
    [accountId, clientIds],
  );
  const byClient = new Map<string, string[]>();
  for (const row of rows) byClient.set(row.client_id, [...(byClient.get(row.client_id) ?? []), row.sid]);
  return byClient;
}

export type SessionAuthorizations = Record<string, { sid?: string }>;

/** The services a browser's session (by its cookie value) is signed in to; undefined without a session. */
export async function sessionAuthorizationsByCookie(db: Queryable, cookieValue: string): Promise<SessionAuthorizations | undefined> {
  const { rows } = await db.query<{ authorizations: SessionAuthorizations | null }>(
    `SELECT payload->'authorizations' AS authorizations FROM oidc_payloads WHERE model = 'Session' AND id = $1`,
    [storedId('Session', cookieValue)],
  );
  return rows[0] ? (rows[0].authorizations ?? {}) : undefined;
}

/**
 * Signs the account out everywhere (after a password change, a reset, a restored email):
 * sessions, interactions in progress, codes and tokens go. Grants (what the person agreed
 * to share) stay, so services ask for a sign-in, not for consent again.
 */
export async function deleteSignInState(tx: Queryable, accountId: string): Promise<void> {
  await tx.query(
    `DELETE FROM oidc_payloads WHERE account_id = $1
     AND model IN ('Session', 'Interaction', 'AuthorizationCode', 'RefreshToken', 'AccessToken', 'DeviceCode', 'BackchannelAuthenticationRequest')`,
    [accountId],
  );
}

/** The account's sign-in sessions and the interactions in progress under them (sign out everywhere); tokens stay. */
export async function deleteSessions(tx: Queryable, accountId: string): Promise<void> {
  await tx.query(`DELETE FROM oidc_payloads WHERE account_id = $1 AND model IN ('Session', 'Interaction')`, [accountId]);
}

/** Every protocol row of the account: sessions, interactions, grants, codes and tokens. */
export async function deleteAccountArtefacts(tx: Queryable, accountId: string): Promise<void> {
  await tx.query('DELETE FROM oidc_payloads WHERE account_id = $1', [accountId]);
}

/** Everything issued to a service (grants, codes, tokens), when the service is removed. */
export async function deleteClientArtefacts(tx: Queryable, clientId: string): Promise<void> {
  await tx.query('DELETE FROM oidc_payloads WHERE client_id = $1', [clientId]);
}

// --- The account's data export ---

export interface LiveArtefact {
  model: string;
  clientId: string | null;
  payload: Record<string, unknown>;
  expiresAt: Date | null;
}

/** The account's live sessions, codes and tokens (payloads hold no credential values). */
export async function liveArtefacts(db: Queryable, accountId: string): Promise<LiveArtefact[]> {
  const { rows } = await db.query<{ model: string; client_id: string | null; payload: Record<string, unknown>; expires_at: Date | null }>(
    `SELECT model, client_id, payload, expires_at FROM oidc_payloads
     WHERE account_id = $1 AND model IN ('Session', 'AccessToken', 'RefreshToken', 'AuthorizationCode') AND ${live}
     ORDER BY model, expires_at`,
    [accountId],
  );
  return rows.map((row) => ({ model: row.model, clientId: row.client_id, payload: row.payload, expiresAt: row.expires_at }));
}

// --- Initial access tokens for dynamic registration ---

/** Records how many registrations an initial access token allows (stored beside its payload). */
export async function setInitialAccessTokenUses(db: Queryable, token: string, uses: number): Promise<void> {
  await db.query(
    `UPDATE oidc_payloads SET payload = jsonb_set(payload, '{remainingUses}', to_jsonb($2::int)) WHERE model = $3 AND id = $1`,
    [storedId('InitialAccessToken', token), uses, 'InitialAccessToken'],
  );
}

/**
 * Spends one use of an initial access token in one statement: of concurrent registrations
 * with a single-use token exactly one wins. False when no use was left. The row stays until it
 * expires, so a registration that then fails can give its use back.
 */
export async function spendInitialAccessTokenUse(db: Queryable, token: string): Promise<boolean> {
  const { rowCount } = await db.query(
    `UPDATE oidc_payloads SET payload = jsonb_set(payload, '{remainingUses}', to_jsonb(coalesce((payload->>'remainingUses')::int, 1) - 1))
     WHERE model = 'InitialAccessToken' AND id = $1 AND coalesce((payload->>'remainingUses')::int, 1) > 0 AND ${live}`,
    [storedId('InitialAccessToken', token)],
  );
  return rowCount === 1;
}

/** Gives back the use a registration spent when the registration itself was refused (bad metadata). */
export async function returnInitialAccessTokenUse(db: Queryable, token: string): Promise<void> {
  await db.query(
    `UPDATE oidc_payloads SET payload = jsonb_set(payload, '{remainingUses}', to_jsonb(coalesce((payload->>'remainingUses')::int, 1) + 1))
     WHERE model = 'InitialAccessToken' AND id = $1`,
    [storedId('InitialAccessToken', token)],
  );
}

// --- Replay detection (DPoP proofs, client assertions) ---

/**
 * Records that a one-time value (a DPoP proof's or a client assertion's jti) was seen, in one
 * statement: true for the first caller, false for every later one while the record lives,
 * concurrent callers included. oidc-provider's own check reads, then writes: two requests
 * with the same proof in flight could both pass it.
 */
export async function recordFirstUse(db: Queryable, id: string, iss: string, expiresInSeconds: number): Promise<boolean> {
  const { rowCount } = await db.query(
    `INSERT INTO oidc_payloads (model, id, payload, expires_at)
     VALUES ('ReplayDetection', $1, jsonb_build_object('iss', $2::text, 'kind', 'ReplayDetection'), now() + make_interval(secs => $3::int))
     ON CONFLICT (model, id) DO UPDATE SET payload = EXCLUDED.payload, expires_at = EXCLUDED.expires_at
       WHERE oidc_payloads.expires_at <= now()`,
    [storedId('ReplayDetection', id), iss, Math.max(1, Math.ceil(expiresInSeconds))],
  );
  return rowCount === 1;
}

// --- Housekeeping ---

/**
 * Deletes expired rows in batches of `batchSize` so that no statement holds locks for
 * long; returns how many rows went. Expired rows are never returned by the adapter anyway.
 */
export async function sweepExpiredArtefacts(db: Queryable, batchSize: number, maxBatches = 1000): Promise<number> {
  let total = 0;
  for (let batch = 0; batch < maxBatches; batch += 1) {
    const { rowCount } = await db.query(
      `DELETE FROM oidc_payloads WHERE ctid IN (
         SELECT ctid FROM oidc_payloads WHERE expires_at <= now() LIMIT $1
       )`,
      [batchSize],
    );
    total += rowCount ?? 0;
    if ((rowCount ?? 0) < batchSize) break;
  }
  return total;
}

/** The handle (uid) of the sign-in session a browser's session cookie names; undefined without one. */
export async function sessionUidByCookie(db: Queryable, cookieValue: string): Promise<string | undefined> {
  const { rows } = await db.query<{ uid: string }>(`SELECT uid FROM oidc_payloads WHERE model = 'Session' AND id = $1 AND ${live}`, [
    storedId('Session', cookieValue),
  ]);
  return rows[0]?.uid;
}

/** Device rows of sessions that no longer exist (ended, expired, swept). */
export async function sweepOrphanSessionDevices(db: Queryable): Promise<number> {
  const { rowCount } = await db.query(
    `DELETE FROM session_devices d WHERE NOT EXISTS (SELECT 1 FROM oidc_payloads p WHERE p.model = 'Session' AND p.uid = d.session_uid)`,
  );
  return rowCount ?? 0;
}
