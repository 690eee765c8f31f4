import { createHash, randomBytes } from 'node:crypto';
import type { Queryable } from '../db/index.js';

export type LinkPurpose = 'verify_email' | 'change_email' | 'reset_password' | 'revert_email_change';

/**
 * Links that act on the account's current credentials or address. Every one still pending is
 * void once the password changes, a reset completes or the address changes: a link mailed
 * before a takeover was noticed must not survive the person's recovery. The revert link is
 * not among them: it is the previous owner's way back and must outlive those changes.
 */
export const credentialLinkPurposes: readonly LinkPurpose[] = ['verify_email', 'change_email', 'reset_password'];

/** Why a link cannot be used. Each gets its own page; none of them changes anything. */
export type LinkFailure = 'invalid' | 'expired' | 'used';

export type LinkState = { status: 'valid'; accountId: string; email: string } | { status: LinkFailure };

// 32 random bytes, base64url: unguessable, and the shape is checked before any lookup.
const tokenShape = /^[A-Za-z0-9_-]{43}$/;

const hashOf = (token: string) => createHash('sha256').update(token).digest('base64url');

/**
 * Creates a one-time link token for an account and returns it; only its hash is stored.
 * `replacePrevious` spends the account's earlier unused links of the same purpose, so that
 * only the latest password-reset or email-change message works.
 */
export async function issueLinkToken(
  db: Queryable,
  link: { accountId: string; purpose: LinkPurpose; email: string; ttlSeconds: number; replacePrevious: boolean },
): Promise<string> {
  const token = randomBytes(32).toString('base64url');
  if (link.replacePrevious) {
    await db.query('DELETE FROM account_tokens WHERE account_id = $1 AND purpose = $2 AND used_at IS NULL', [link.accountId, link.purpose]);
  }
  await db.query(
    `INSERT INTO account_tokens (token_hash, purpose, account_id, email, expires_at)
     VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5))`,
    [hashOf(token), link.purpose, link.accountId, link.email, link.ttlSeconds],
  );
  return token;
}

/** What a link would do, without spending it (for the page that asks to confirm). */
export async function inspectLinkToken(db: Queryable, token: unknown, purpose: LinkPurpose): Promise<LinkState> {
  if (typeof token !== 'string' || !tokenShape.test(token)) return { status: 'invalid' };
  const { rows } = await db.query<{ account_id: string; email: string; used: boolean; expired: boolean }>(
    `SELECT account_id, email, used_at IS NOT NULL AS used, expires_at <= now() AS expired
     FROM account_tokens WHERE token_hash = $1 AND purpose = $2`,
    [hashOf(token), purpose],
  );
  const row = rows[0];
  if (!row) return { status: 'invalid' };
  if (row.used) return { status: 'used' };
  if (row.expired) return { status: 'expired' };
  return { status: 'valid', accountId: row.account_id, email: row.email };
}

/**
 * Spends a link: one conditional UPDATE, so of two concurrent uses exactly one wins. Run it
 * in the transaction that makes the change, so a failed change leaves the link unspent.
 */
export async function redeemLinkToken(tx: Queryable, token: unknown, purpose: LinkPurpose): Promise<LinkState> {
  if (typeof token !== 'string' || !tokenShape.test(token)) return { status: 'invalid' };
  const { rows } = await tx.query<{ account_id: string; email: string }>(
    `UPDATE account_tokens SET used_at = now()
     WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > now()
     RETURNING account_id, email`,
    [hashOf(token), purpose],
  );
  const row = rows[0];
  if (row) return { status: 'valid', accountId: row.account_id, email: row.email };
  const state = await inspectLinkToken(tx, token, purpose);
  // Lost a race between the two statements: it was valid a moment ago and is spent now.
  return state.status === 'valid' ? { status: 'used' } : state;
}

/** Spends every other unused link of these purposes (after the change they were for). */
export async function spendOtherLinkTokens(tx: Queryable, accountId: string, purposes: readonly LinkPurpose[]): Promise<void> {
  await tx.query('UPDATE account_tokens SET used_at = now() WHERE account_id = $1 AND purpose = ANY($2::text[]) AND used_at IS NULL', [
    accountId,
    purposes,
  ]);
}

/** The newest unspent, unexpired link of a purpose (e.g. the pending new email address). */
export async function pendingLink(
  db: Queryable,
  accountId: string,
  purpose: LinkPurpose,
): Promise<{ email: string; expiresAt: Date } | undefined> {
  const { rows } = await db.query<{ email: string; expires_at: Date }>(
    `SELECT email, expires_at FROM account_tokens
     WHERE account_id = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > now()
     ORDER BY created_at DESC LIMIT 1`,
    [accountId, purpose],
  );
  return rows[0] ? { email: rows[0].email, expiresAt: rows[0].expires_at } : undefined;
}

/** Deletes links a week after they expired (run by the sweeper). */
export async function sweepExpiredLinkTokens(db: Queryable): Promise<number> {
  const { rowCount } = await db.query(`DELETE FROM account_tokens WHERE expires_at < now() - interval '7 days'`);
  return rowCount ?? 0;
}
