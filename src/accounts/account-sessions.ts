import { createHash, randomBytes } from 'node:crypto';
import type { Queryable } from '../db/index.js';

/**
 * Sessions of the account pages. They expire after `idleSeconds` without a request and in
 * any case this long after sign-in: the pages change passwords and delete accounts, so a
 * forgotten tab must not stay signed in for days.
 */
export const ACCOUNT_SESSION_MAX_AGE_SECONDS = 12 * 3600;

const hashOf = (id: string) => createHash('sha256').update(id).digest('base64url');
const idShape = /^[A-Za-z0-9_-]{43}$/;

/** The device a session was started from, for the person's list of sessions. */
export interface DeviceFacts {
  browser: string;
  os: string;
  ipPrefix: string | undefined;
}

export async function startAccountSession(db: Queryable, accountId: string, idleSeconds: number, device: DeviceFacts): Promise<string> {
  const id = randomBytes(32).toString('base64url');
  await db.query(
    `INSERT INTO account_sessions (id_hash, account_id, expires_at, browser, os, ip_prefix)
     VALUES ($1, $2, now() + make_interval(secs => $3), $4, $5, $6)`,
    [hashOf(id), accountId, idleSeconds, device.browser, device.os, device.ipPrefix ?? null],
  );
  return id;
}

/** The account of a live session, extending its idle expiry; undefined when there is none. */
export async function resumeAccountSession(db: Queryable, id: string, idleSeconds: number): Promise<string | undefined> {
  if (!idShape.test(id)) return undefined;
  const { rows } = await db.query<{ account_id: string }>(
    `UPDATE account_sessions
     SET last_seen_at = now(),
         expires_at = least(created_at + make_interval(secs => $3), now() + make_interval(secs => $2))
     WHERE id_hash = $1 AND expires_at > now()
     RETURNING account_id`,
    [hashOf(id), idleSeconds, ACCOUNT_SESSION_MAX_AGE_SECONDS],
  );
  return rows[0]?.account_id;
}

export async function endAccountSession(db: Queryable, id: string): Promise<void> {
  if (!idShape.test(id)) return;
  await db.query('DELETE FROM account_sessions WHERE id_hash = $1', [hashOf(id)]);
}

/** Ends the account's other account-page sessions (after a password change), keeping `keepId`. */
export async function endOtherAccountSessions(db: Queryable, accountId: string, keepId: string | undefined): Promise<void> {
  await db.query('DELETE FROM account_sessions WHERE account_id = $1 AND id_hash <> $2', [accountId, keepId ? hashOf(keepId) : '']);
}

export interface AccountSessionSummary {
  /** Names the session in a form (the digest of its id: not something a browser can present). */
  handle: string;
  createdAt: Date;
  lastSeenAt: Date;
  expiresAt: Date;
  browser: string;
  os: string;
  ipPrefix: string | null;
}

export async function listAccountSessions(db: Queryable, accountId: string): Promise<AccountSessionSummary[]> {
  const { rows } = await db.query<{
    id_hash: string;
    created_at: Date;
    last_seen_at: Date;
    expires_at: Date;
    browser: string;
    os: string;
    ip_prefix: string | null;
  }>(
    `SELECT id_hash, created_at, last_seen_at, expires_at, browser, os, ip_prefix FROM account_sessions
     WHERE account_id = $1 AND expires_at > now() ORDER BY created_at`,
    [accountId],
  );
  return rows.map((row) => ({
    handle: row.id_hash,
    createdAt: row.created_at,
    lastSeenAt: row.last_seen_at,
    expiresAt: row.expires_at,
    browser: row.browser,
    os: row.os,
    ipPrefix: row.ip_prefix,
  }));
}

/** The handle of the session with this id (to mark "this browser" in the list). */
export const accountSessionHandle = (id: string) => hashOf(id);

/** Ends one of the account's account-page sessions by its handle; false when there is none. */
export async function endAccountSessionByHandle(db: Queryable, accountId: string, handle: string): Promise<boolean> {
  const { rowCount } = await db.query('DELETE FROM account_sessions WHERE account_id = $1 AND id_hash = $2', [accountId, handle]);
  return rowCount === 1;
}

/** Deletes expired account-page sessions (run by the sweeper). */
export async function sweepExpiredAccountSessions(db: Queryable): Promise<number> {
  const { rowCount } = await db.query('DELETE FROM account_sessions WHERE expires_at < now()');
  return rowCount ?? 0;
}
