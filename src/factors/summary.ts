import type { Queryable } from '../db/index.js';
import { listPasskeys, type Passkey } from './passkeys.js';
import { summariseRecoveryCodes, type RecoveryCodeSummary } from './recovery-codes.js';
import { findTotpFactor, type TotpFactor } from './totp.js';

/** Every sign-in factor of an account beyond its password, as the Security page and the CLI show them. */
export interface Factors {
  passkeys: Passkey[];
  totp: TotpFactor | undefined;
  recoveryCodes: RecoveryCodeSummary;
}

export async function factorsOf(db: Queryable, accountId: string): Promise<Factors> {
  const [passkeys, totp, recoveryCodes] = await Promise.all([
    listPasskeys(db, accountId),
    findTotpFactor(db, accountId),
    summariseRecoveryCodes(db, accountId),
  ]);
  return {
    passkeys: passkeys.map(({ credentialId, name, deviceType, backedUp, createdAt, lastUsedAt }) => ({
      credentialId,
      name,
      deviceType,
      backedUp,
      createdAt,
      lastUsedAt,
    })),
    totp,
    recoveryCodes,
  };
}

/** Whether a password alone no longer signs in: the account has an authenticator app or a passkey. */
export function hasSecondFactor(factors: Pick<Factors, 'passkeys' | 'totp'>): boolean {
  return factors.passkeys.length > 0 || factors.totp !== undefined;
}

/** hasSecondFactor in one query, for the sign-in path. */
export async function accountHasSecondFactor(db: Queryable, accountId: string): Promise<boolean> {
  const { rows } = await db.query<{ has: boolean }>(
    `SELECT EXISTS (SELECT 1 FROM passkeys WHERE account_id = $1) OR EXISTS (SELECT 1 FROM totp_factors WHERE account_id = $1) AS has`,
    [accountId],
  );
  return rows[0]!.has;
}
