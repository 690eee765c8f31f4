import { createHash, randomBytes, randomInt } from 'node:crypto';
import { z } from 'zod';
import type { Queryable } from '../db/index.js';

/**
 * Recovery codes: ten single-use codes for a person who lost their second factor. Each is 12
 * characters of Crockford's base32 (60 bits), shown once as XXXX-XXXX-XXXX and stored as
 * SHA-256 over a random salt and the code (OWASP ASVS 2.6.2). Entry forgives case, spaces,
 * hyphens and the letters people confuse with digits (O, I, L).
 */
export const RECOVERY_CODE_COUNT = 10;
const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const LENGTH = 12;

export const recoveryCodeSchema = z
  .string()
  .transform((code) => code.toUpperCase().replace(/[\s-]/g, '').replace(/O/g, '0').replace(/[IL]/g, '1'))
  .pipe(z.string().regex(new RegExp(`^[${ALPHABET}]{${LENGTH}}$`)));

function newCode(): string {
  const characters = Array.from({ length: LENGTH }, () => ALPHABET[randomInt(ALPHABET.length)]!);
  return [0, 4, 8].map((start) => characters.slice(start, start + 4).join('')).join('-');
}

const digest = (salt: Buffer, normalised: string) => createHash('sha256').update(salt).update(normalised).digest();
const normalise = (code: string) => code.replace(/-/g, '');

/** Ten new codes for the account, replacing every earlier one; returns them (the only time they exist in clear). */
export async function replaceRecoveryCodes(tx: Queryable, accountId: string): Promise<string[]> {
  await tx.query('DELETE FROM recovery_codes WHERE account_id = $1', [accountId]);
  const codes = Array.from({ length: RECOVERY_CODE_COUNT }, newCode);
  for (const code of codes) {
    const salt = randomBytes(16);
    await tx.query('INSERT INTO recovery_codes (account_id, salt, code_hash) VALUES ($1, $2, $3)', [
      accountId,
      salt,
      digest(salt, normalise(code)),
    ]);
  }
  return codes;
}

/** Spends a code (already normalised by recoveryCodeSchema), atomically: a code works once. */
export async function useRecoveryCode(db: Queryable, accountId: string, normalised: string): Promise<boolean> {
  const { rows } = await db.query<{ salt: Buffer; code_hash: Buffer }>(
    'SELECT salt, code_hash FROM recovery_codes WHERE account_id = $1 AND used_at IS NULL',
    [accountId],
  );
  const match = rows.find((row) => digest(row.salt, normalised).equals(row.code_hash));
  if (!match) return false;
  const { rowCount } = await db.query(
    'UPDATE recovery_codes SET used_at = now() WHERE account_id = $1 AND code_hash = $2 AND used_at IS NULL',
    [accountId, match.code_hash],
  );
  return rowCount === 1;
}

export interface RecoveryCodeSummary {
  unused: number;
  total: number;
  createdAt: Date | null;
}

export async function summariseRecoveryCodes(db: Queryable, accountId: string): Promise<RecoveryCodeSummary> {
  const { rows } = await db.query<{ unused: string; total: string; created_at: Date | null }>(
    `SELECT count(*) FILTER (WHERE used_at IS NULL) AS unused, count(*) AS total, min(created_at) AS created_at
     FROM recovery_codes WHERE account_id = $1`,
    [accountId],
  );
  return { unused: Number(rows[0]!.unused), total: Number(rows[0]!.total), createdAt: rows[0]!.created_at };
}

/** Deletes the account's recovery codes; returns how many were still unused. */
export async function deleteRecoveryCodes(db: Queryable, accountId: string): Promise<number> {
  const { rows } = await db.query<{ unused: string }>(
    `WITH gone AS (DELETE FROM recovery_codes WHERE account_id = $1 RETURNING used_at)
     SELECT count(*) FILTER (WHERE used_at IS NULL) AS unused FROM gone`,
    [accountId],
  );
  return Number(rows[0]?.unused ?? 0);
}
