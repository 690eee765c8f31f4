import type { Database, Queryable } from '../db/index.js';

/**
 * An account's relations with services, read from oidc-provider's stored artefacts
 * (oidc_payloads rows carry account_id, client_id and grant_id beside the payload).
 */
export interface ConnectedService {
  clientId: string;
  name: string;
  /** Every scope the person granted this service, across its grants. */
  scopes: string[];
  firstUsedAt: Date;
  lastUsedAt: Date | null;
}

interface ConnectedServiceRow {
  client_id: string;
  name: string | null;
  scopes: (string | null)[];
  granted_at: Date | null;
  first_used_at: Date | null;
  last_used_at: Date | null;
  [key: string]: unknown;
}

/** Services holding a live grant from the account, with when they were first and last used. */
export async function listConnectedServices(db: Queryable, accountId: string): Promise<ConnectedService[]> {
  const { rows } = await db.query<ConnectedServiceRow>(
    `SELECT g.client_id, c.metadata->>'client_name' AS name,
            array_agg(g.payload->'openid'->>'scope') AS scopes,
            min(to_timestamp((g.payload->>'iat')::bigint)) AS granted_at,
            u.first_used_at, u.last_used_at
     FROM oidc_payloads g
     JOIN clients c ON c.id = g.client_id
     LEFT JOIN service_usage u ON u.account_id = g.account_id AND u.client_id = g.client_id
     WHERE g.model = 'Grant' AND g.account_id = $1 AND (g.expires_at IS NULL OR g.expires_at > now())
     GROUP BY g.client_id, c.metadata->>'client_name', u.first_used_at, u.last_used_at
     ORDER BY lower(coalesce(c.metadata->>'client_name', g.client_id)), g.client_id`,
    [accountId],
  );
  return rows.map((row) => {
    const candidates = [row.granted_at, row.first_used_at].filter((date): date is Date => date instanceof Date);
    return {
      clientId: row.client_id,
      name: row.name ?? row.client_id,
      scopes: [...new Set(row.scopes.flatMap((scope) => (scope ?? '').split(' ')).filter(Boolean))],
      firstUsedAt: new Date(Math.min(...candidates.map((date) => date.getTime()))),
      lastUsedAt: row.last_used_at,
    };
  });
}

/** Services the account has a live sign-in session with (oidc-provider Session rows). */
export async function sessionClientIds(db: Queryable, accountId: string): Promise<string[]> {
  const { rows } = await db.query<{ client_id: string }>(
    `SELECT DISTINCT auth.key AS client_id
     FROM oidc_payloads, jsonb_each(coalesce(payload->'authorizations', '{}'::jsonb)) AS auth
     WHERE model = 'Session' AND account_id = $1 AND (expires_at IS NULL OR expires_at > now())`,
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
 * Disconnects a service: its grants go, and with them every token and code issued under
 * them (rows sharing the grant_id; a Grant row carries its own id there). Returns false when
 * the service held no grant of this account.
 */
export async function revokeServiceGrants(db: Database, accountId: string, clientId: string): Promise<boolean> {
  return db.transaction(async (tx) => {
    const { rows } = await tx.query<{ id: string }>(
      `SELECT id FROM oidc_payloads WHERE model = 'Grant' AND account_id = $1 AND client_id = $2`,
      [accountId, clientId],
    );
    if (rows.length === 0) return false;
    await tx.query('DELETE FROM oidc_payloads WHERE grant_id = ANY($1::text[])', [rows.map((row) => row.id)]);
    await tx.query('DELETE FROM service_usage WHERE account_id = $1 AND client_id = $2', [accountId, clientId]);
    return true;
  });
}

/**
 * Signs the account out everywhere after a password change: its sign-in sessions end and
 * its refresh and access tokens stop working. Grants (what the person agreed to share)
 * stay, so services ask for a sign-in, not for consent again.
 */
export async function endSessionsAndRevokeTokens(tx: Queryable, accountId: string): Promise<void> {
  await tx.query(`DELETE FROM oidc_payloads WHERE account_id = $1 AND model IN ('Session', 'RefreshToken', 'AccessToken')`, [accountId]);
}

/** Notes that the account used a service now (a sign-in or a token for it). */
export async function recordServiceUse(db: Queryable, accountId: string, clientId: string): Promise<void> {
  await db.query(
    `INSERT INTO service_usage (account_id, client_id)
     SELECT $1, $2 WHERE EXISTS (SELECT 1 FROM accounts WHERE id = $1)
     ON CONFLICT (account_id, client_id) DO UPDATE SET last_used_at = now()`,
    [accountId, clientId],
  );
}
