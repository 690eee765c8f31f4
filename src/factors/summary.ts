import type { Queryable } from '../db/index.js';
import type { Passkey } from './passkeys.js';
import type { RecoveryCodeSummary } from './recovery-codes.js';
import type { TotpFactor } from './totp.js';

/** Every sign-in factor of an account beyond its password, as the Security page and the CLI show them. */
export interface Factors {
  passkeys: Passkey[];
  totp: TotpFactor | undefined;
  recoveryCodes: RecoveryCodeSummary;
}

type Timestamp = string;

export type FactorsRow = {
  factor_passkeys: {
    credentialId: string;
    name: string;
    deviceType: Passkey['deviceType'];
    backedUp: boolean;
    createdAt: Timestamp;
    lastUsedAt: Timestamp | null;
  }[];
  factor_totp: { createdAt: Timestamp; lastUsedAt: Timestamp | null } | null;
  factor_recovery_codes: { unused: number; total: number; createdAt: Timestamp | null };
};

const dateOrNull = (value: Timestamp | null) => (value === null ? null : new Date(value));

/**
 * The factors of the account whose id is `accountId` (an SQL expression) as three columns:
 * a statement that reads the account for another reason (a pending sign-in) reads them too.
 */
export function factorColumns(accountId: string): string {
  return `(SELECT coalesce(json_agg(json_build_object('credentialId', credential_id, 'name', name, 'deviceType', device_type,
                 'backedUp', backed_up, 'createdAt', created_at, 'lastUsedAt', last_used_at) ORDER BY created_at, credential_id), '[]')
        FROM passkeys WHERE account_id = ${accountId}) AS factor_passkeys,
       (SELECT json_build_object('createdAt', created_at, 'lastUsedAt', last_used_at) FROM totp_factors WHERE account_id = ${accountId}) AS factor_totp,
       (SELECT json_build_object('unused', count(*) FILTER (WHERE used_at IS NULL), 'total', count(*), 'createdAt', min(created_at))
        FROM recovery_codes WHERE account_id = ${accountId}) AS factor_recovery_codes`;
}

export function toFactors(row: FactorsRow): Factors {
  const { factor_passkeys: passkeys, factor_totp: totp, factor_recovery_codes: codes } = row;
  return {
    passkeys: passkeys.map((passkey) => ({
      ...passkey,
      createdAt: new Date(passkey.createdAt),
      lastUsedAt: dateOrNull(passkey.lastUsedAt),
    })),
    totp: totp ? { createdAt: new Date(totp.createdAt), lastUsedAt: dateOrNull(totp.lastUsedAt) } : undefined,
    recoveryCodes: { unused: codes.unused, total: codes.total, createdAt: dateOrNull(codes.createdAt) },
  };
}

/**
 * In one statement: a sign-in with a second step needs them on each of its pages (to choose
 * the step, to show it and to check the answer), and each statement costs more than its rows.
 */
export async function factorsOf(db: Queryable, accountId: string): Promise<Factors> {
  const { rows } = await db.query<FactorsRow>(`SELECT ${factorColumns('$1')}`, [accountId]);
  return toFactors(rows[0]!);
}

/** The factors of an account just created. */
export const noFactors: Factors = Object.freeze({
  passkeys: [],
  totp: undefined,
  recoveryCodes: { unused: 0, total: 0, createdAt: null },
});

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
