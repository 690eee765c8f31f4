import { createHash, randomBytes } from 'node:crypto';
import { accountColumnsOf, toAccount, type Account, type AccountRow } from '../accounts/store.js';
import type { Queryable } from '../db/index.js';
import { factorColumns, toFactors, type Factors, type FactorsRow } from './summary.js';

/**
 * A sign-in between its steps: the password was right and the second step is awaited. The
 * browser holds a random id (cookie); only its SHA-256 is kept, with the account, the methods
 * used so far and the door it may finish at (one interaction, or the account pages).
 * Finishing or abandoning it deletes it; it expires after ten minutes.
 */
const LIFETIME_SECONDS = 600;
const hashOf = (id: string) => createHash('sha256').update(id).digest('base64url');
const idShape = /^[A-Za-z0-9_-]{43}$/;

export interface PendingSignIn {
  accountId: string;
  amr: string[];
}

export async function startPendingSignIn(db: Queryable, pending: PendingSignIn & { door: string }): Promise<string> {
  const id = randomBytes(32).toString('base64url');
  await db.query(
    `INSERT INTO pending_sign_ins (id_hash, account_id, door, amr, expires_at) VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5))`,
    [hashOf(id), pending.accountId, pending.door, pending.amr, LIFETIME_SECONDS],
  );
  return id;
}

/** A pending sign-in as its pages need it; the sealed authenticator-app secret when asked for (null: none). */
type FoundPendingSignIn = PendingSignIn & { account: Account; factors: Factors; totpSecretEnvelope?: unknown };

/**
 * The pending sign-in with its account and the account's factors, in one statement: each
 * page of the second step needs all three. `totpSecret`: also the sealed secret of the
 * authenticator app, for the page that checks a code (a statement fewer than reading it then).
 */
export async function findPendingSignIn(
  db: Queryable,
  id: string | undefined,
  door: string,
  options: { totpSecret?: boolean } = {},
): Promise<FoundPendingSignIn | undefined> {
  if (!id || !idShape.test(id)) return undefined;
  const secretColumn = options.totpSecret
    ? ', (SELECT secret_envelope FROM totp_factors WHERE account_id = a.id) AS totp_secret_envelope'
    : '';
  const { rows } = await db.query<AccountRow & FactorsRow & { pending_amr: string[]; totp_secret_envelope?: unknown }>(
    `SELECT p.amr AS pending_amr, ${accountColumnsOf('a')}, ${factorColumns('a.id')}${secretColumn}
     FROM pending_sign_ins p JOIN accounts a ON a.id = p.account_id
     WHERE p.id_hash = $1 AND p.door = $2 AND p.expires_at > now()`,
    [hashOf(id), door],
  );
  const row = rows[0];
  return (
    row && {
      accountId: row.id,
      amr: row.pending_amr,
      account: toAccount(row),
      factors: toFactors(row),
      ...(options.totpSecret ? { totpSecretEnvelope: row.totp_secret_envelope ?? null } : {}),
    }
  );
}

/** Records a factor the person set up during this sign-in (so it counts towards the level when it finishes). */
export async function extendPendingSignIn(db: Queryable, id: string, amr: readonly string[]): Promise<void> {
  if (!idShape.test(id)) return;
  await db.query('UPDATE pending_sign_ins SET amr = $2 WHERE id_hash = $1', [hashOf(id), amr]);
}

/** Ends it; true for the one caller that did (a double submit finishes once). */
export async function finishPendingSignIn(db: Queryable, id: string): Promise<boolean> {
  if (!idShape.test(id)) return false;
  const { rowCount } = await db.query('DELETE FROM pending_sign_ins WHERE id_hash = $1 AND expires_at > now()', [hashOf(id)]);
  return rowCount === 1;
}

/** Every sign-in of the account waiting for its second step (its factors changed under it). */
export async function forgetPendingSignIns(db: Queryable, accountId: string): Promise<void> {
  await db.query('DELETE FROM pending_sign_ins WHERE account_id = $1', [accountId]);
}

export async function sweepPendingSignIns(db: Queryable): Promise<number> {
  const { rowCount } = await db.query('DELETE FROM pending_sign_ins WHERE expires_at < now()');
  return rowCount ?? 0;
}
