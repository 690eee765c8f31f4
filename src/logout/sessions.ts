import type { Database, Queryable } from '../db/index.js';
import { NotFound } from '../errors.js';
import { enqueueLogoutDelivery } from './deliveries.js';

export interface SessionSummary {
  /** The session's public handle (not the cookie value, which stays secret). */
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

const toSummary = (row: SessionRow): SessionSummary => ({
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
export async function listSessions(db: Queryable, accountId: string): Promise<SessionSummary[]> {
  const { rows } = await db.query<SessionRow>(
    `SELECT uid, account_id, payload, expires_at FROM oidc_payloads
     WHERE model = 'Session' AND account_id = $1 AND (expires_at IS NULL OR expires_at > now())
     ORDER BY expires_at DESC NULLS LAST`,
    [accountId],
  );
  return rows.map(toSummary);
}

/**
 * Ends a session for support staff: the session row goes (its cookie stops working) and
 * every service it signed in to gets a back-channel logout, in one transaction.
 */
export async function revokeSession(db: Database, uid: string): Promise<SessionSummary> {
  return db.transaction(async (tx) => {
    const { rows } = await tx.query<SessionRow>(
      `DELETE FROM oidc_payloads WHERE model = 'Session' AND uid = $1 RETURNING uid, account_id, payload, expires_at`,
      [uid],
    );
    if (!rows[0]) throw new NotFound(`no session with uid ${uid}`);
    const session = toSummary(rows[0]);
    for (const service of session.services) {
      await enqueueLogoutDelivery(tx, {
        clientId: service.clientId,
        accountId: session.accountId,
        sid: service.sid || null,
        reason: 'session_revoked',
      });
    }
    return session;
  });
}
