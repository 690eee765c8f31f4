import { randomBytes } from 'node:crypto';
import type { Queryable } from '../db/index.js';

/** A registered passkey as the Security page and the CLI show it (never its key). */
export interface Passkey {
  credentialId: string;
  name: string;
  /** synced across the person's devices (multiDevice) or bound to one (singleDevice). */
  deviceType: 'singleDevice' | 'multiDevice';
  backedUp: boolean;
  createdAt: Date;
  lastUsedAt: Date | null;
}

/** What verifying an assertion needs of a stored passkey. */
export interface StoredPasskey extends Passkey {
  accountId: string;
  publicKey: Uint8Array<ArrayBuffer>;
  counter: number;
  transports: string[];
}

export interface NewPasskey {
  credentialId: string;
  publicKey: Uint8Array<ArrayBuffer>;
  counter: number;
  transports: string[];
  deviceType: 'singleDevice' | 'multiDevice';
  backedUp: boolean;
  aaguid: string;
  name: string;
}

type PasskeyRow = {
  credential_id: string;
  account_id: string;
  public_key: Buffer;
  counter: string;
  transports: string[];
  device_type: 'singleDevice' | 'multiDevice';
  backed_up: boolean;
  name: string;
  created_at: Date;
  last_used_at: Date | null;
};

const columns = 'credential_id, account_id, public_key, counter, transports, device_type, backed_up, name, created_at, last_used_at';

const toPasskey = (row: PasskeyRow): StoredPasskey => ({
  credentialId: row.credential_id,
  accountId: row.account_id,
  publicKey: new Uint8Array(row.public_key),
  counter: Number(row.counter),
  transports: row.transports,
  name: row.name,
  deviceType: row.device_type,
  backedUp: row.backed_up,
  createdAt: row.created_at,
  lastUsedAt: row.last_used_at,
});

/** The person's WebAuthn user handle, made on first use: random, never the email or a `sub`. */
export async function webauthnUserId(db: Queryable, accountId: string): Promise<string> {
  const { rows } = await db.query<{ webauthn_user_id: string }>(
    `UPDATE accounts SET webauthn_user_id = coalesce(webauthn_user_id, $2) WHERE id = $1 RETURNING webauthn_user_id`,
    [accountId, randomBytes(32).toString('base64url')],
  );
  if (!rows[0]) throw new Error(`no account ${accountId}`);
  return rows[0].webauthn_user_id;
}

export async function accountIdByUserHandle(db: Queryable, userHandle: string): Promise<string | undefined> {
  const { rows } = await db.query<{ id: string }>('SELECT id FROM accounts WHERE webauthn_user_id = $1', [userHandle]);
  return rows[0]?.id;
}

export async function listPasskeys(db: Queryable, accountId: string): Promise<StoredPasskey[]> {
  const { rows } = await db.query<PasskeyRow>(`SELECT ${columns} FROM passkeys WHERE account_id = $1 ORDER BY created_at, credential_id`, [
    accountId,
  ]);
  return rows.map(toPasskey);
}

export async function findPasskey(db: Queryable, credentialId: string): Promise<StoredPasskey | undefined> {
  const { rows } = await db.query<PasskeyRow>(`SELECT ${columns} FROM passkeys WHERE credential_id = $1`, [credentialId]);
  return rows[0] && toPasskey(rows[0]);
}

/** Stores a verified registration; false when that credential is already registered (to anyone). */
export async function insertPasskey(db: Queryable, accountId: string, passkey: NewPasskey): Promise<boolean> {
  const { rowCount } = await db.query(
    `INSERT INTO passkeys (credential_id, account_id, public_key, counter, transports, device_type, backed_up, aaguid, name)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (credential_id) DO NOTHING`,
    [
      passkey.credentialId,
      accountId,
      Buffer.from(passkey.publicKey),
      passkey.counter,
      passkey.transports,
      passkey.deviceType,
      passkey.backedUp,
      passkey.aaguid,
      passkey.name,
    ],
  );
  return rowCount === 1;
}

/**
 * Records a verified assertion: the new signature counter and backup state. The counter only
 * moves forward (a concurrent use with the same or a lower counter changes nothing and
 * reports false: a cloned authenticator, or a replay).
 */
export async function recordPasskeyUse(
  db: Queryable,
  credentialId: string,
  use: { previousCounter: number; newCounter: number; backedUp: boolean },
): Promise<boolean> {
  const { rowCount } = await db.query(
    `UPDATE passkeys SET counter = $3, backed_up = $4, last_used_at = now()
     WHERE credential_id = $1 AND (counter = $2 OR $3::bigint > counter)`,
    [credentialId, use.previousCounter, use.newCounter, use.backedUp],
  );
  return rowCount === 1;
}

export async function renamePasskey(db: Queryable, accountId: string, credentialId: string, name: string): Promise<boolean> {
  const { rowCount } = await db.query('UPDATE passkeys SET name = $3 WHERE account_id = $1 AND credential_id = $2', [
    accountId,
    credentialId,
    name,
  ]);
  return rowCount === 1;
}

export async function deletePasskey(db: Queryable, accountId: string, credentialId: string): Promise<Passkey | undefined> {
  const { rows } = await db.query<PasskeyRow>(`DELETE FROM passkeys WHERE account_id = $1 AND credential_id = $2 RETURNING ${columns}`, [
    accountId,
    credentialId,
  ]);
  return rows[0] && toPasskey(rows[0]);
}

/** Every passkey of the account (support's reset); how many there were. */
export async function deleteAllPasskeys(db: Queryable, accountId: string): Promise<number> {
  const { rowCount } = await db.query('DELETE FROM passkeys WHERE account_id = $1', [accountId]);
  return rowCount ?? 0;
}
