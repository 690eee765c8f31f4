import { Secret, TOTP } from 'otpauth';
import { z } from 'zod';
import type { Queryable } from '../db/index.js';
import { decryptJson, encryptJson, envelopeSchema, type KeyRing } from '../security/key-encryption.js';

/**
 * Authenticator apps (RFC 6238 TOTP, through otpauth): SHA-1, 6 digits, 30-second steps, the
 * parameters every app understands. A code is accepted within one step of drift either way,
 * and only once: the step of each accepted code is kept and no earlier or equal step is
 * accepted again. Secrets are encrypted at rest under the key-encryption key.
 */
const PERIOD = 30;
const DIGITS = 6;
const DRIFT_STEPS = 1;
const ENROLMENT_SECONDS = 15 * 60;

/** Six digits (spaces, as apps show them, are allowed). */
export const totpCodeSchema = z
  .string()
  .transform((code) => code.replace(/\s/g, ''))
  .pipe(z.string().regex(/^\d{6}$/));

export function newTotpSecret(): string {
  return new Secret({ size: 20 }).base32;
}

function totpOf(secret: string, label = '', issuer = ''): TOTP {
  return new TOTP({ issuer, label, secret: Secret.fromBase32(secret), algorithm: 'SHA1', digits: DIGITS, period: PERIOD });
}

/** The otpauth:// URI an app reads from the QR code. */
export function totpUri(secret: string, account: { label: string; issuer: string }): string {
  return totpOf(secret, account.label, account.issuer).toString();
}

/** The time step a code belongs to, when it is right for this secret now (±1 step); undefined otherwise. */
export function matchingStep(secret: string, code: string, now = Date.now()): number | undefined {
  const delta = totpOf(secret).validate({ token: code, timestamp: now, window: DRIFT_STEPS });
  return delta === null ? undefined : TOTP.counter({ period: PERIOD, timestamp: now }) + delta;
}

const aad = (accountId: string) => `totp:${accountId}`;
const seal = (secret: string, accountId: string, keys: KeyRing) => encryptJson(secret, aad(accountId), keys.primary);
function open(envelope: unknown, accountId: string, keys: KeyRing): string {
  return String(decryptJson(envelopeSchema.parse(envelope), aad(accountId), keys.all));
}

/** The secret being set up for this account: the pending one, or a new one (replacing an expired one). */
export async function enrolmentSecret(db: Queryable, accountId: string, keys: KeyRing): Promise<string> {
  const { rows } = await db.query<{ secret_envelope: unknown }>(
    'SELECT secret_envelope FROM totp_enrolments WHERE account_id = $1 AND expires_at > now()',
    [accountId],
  );
  if (rows[0]) return open(rows[0].secret_envelope, accountId, keys);
  const secret = newTotpSecret();
  await db.query(
    `INSERT INTO totp_enrolments (account_id, secret_envelope, expires_at) VALUES ($1, $2, now() + make_interval(secs => $3))
     ON CONFLICT (account_id) DO UPDATE SET secret_envelope = excluded.secret_envelope, expires_at = excluded.expires_at`,
    [accountId, seal(secret, accountId, keys), ENROLMENT_SECONDS],
  );
  return secret;
}

/** The pending secret, when one is being set up. */
export async function pendingEnrolmentSecret(db: Queryable, accountId: string, keys: KeyRing): Promise<string | undefined> {
  const { rows } = await db.query<{ secret_envelope: unknown }>(
    'SELECT secret_envelope FROM totp_enrolments WHERE account_id = $1 AND expires_at > now()',
    [accountId],
  );
  return rows[0] ? open(rows[0].secret_envelope, accountId, keys) : undefined;
}

/** Makes the pending secret the account's authenticator app, the confirming code's step already spent. */
export async function confirmEnrolment(tx: Queryable, accountId: string, secret: string, step: number, keys: KeyRing): Promise<boolean> {
  const { rowCount } = await tx.query('DELETE FROM totp_enrolments WHERE account_id = $1', [accountId]);
  if (rowCount !== 1) return false;
  const inserted = await tx.query(
    `INSERT INTO totp_factors (account_id, secret_envelope, last_used_step) VALUES ($1, $2, $3) ON CONFLICT (account_id) DO NOTHING`,
    [accountId, seal(secret, accountId, keys), step],
  );
  return inserted.rowCount === 1;
}

export interface TotpFactor {
  createdAt: Date;
  lastUsedAt: Date | null;
}

export async function findTotpFactor(db: Queryable, accountId: string): Promise<TotpFactor | undefined> {
  const { rows } = await db.query<{ created_at: Date; last_used_at: Date | null }>(
    'SELECT created_at, last_used_at FROM totp_factors WHERE account_id = $1',
    [accountId],
  );
  return rows[0] && { createdAt: rows[0].created_at, lastUsedAt: rows[0].last_used_at };
}

/**
 * Checks a code against the account's authenticator app and spends its step, atomically:
 * of two submissions of one code (a replay, a double submit), exactly one is accepted.
 */
export async function useTotpCode(
  db: Queryable,
  accountId: string,
  code: string,
  keys: KeyRing,
  /** The sealed secret, when the caller read it with something else (null: no factor); read here otherwise. */
  knownEnvelope?: unknown,
): Promise<boolean> {
  const envelope =
    knownEnvelope !== undefined
      ? knownEnvelope
      : ((await db.query<{ secret_envelope: unknown }>('SELECT secret_envelope FROM totp_factors WHERE account_id = $1', [accountId]))
          .rows[0]?.secret_envelope ?? null);
  if (envelope === null) return false;
  const step = matchingStep(open(envelope, accountId, keys), code);
  if (step === undefined) return false;
  // Spent only under the secret it was checked against: a factor replaced since then is not.
  const { rowCount } = await db.query(
    `UPDATE totp_factors SET last_used_step = $2, last_used_at = now()
     WHERE account_id = $1 AND secret_envelope = $3::jsonb AND (last_used_step IS NULL OR last_used_step < $2)`,
    [accountId, step, JSON.stringify(envelope)],
  );
  return rowCount === 1;
}

export async function deleteTotpFactor(db: Queryable, accountId: string): Promise<boolean> {
  const { rowCount } = await db.query('DELETE FROM totp_factors WHERE account_id = $1', [accountId]);
  await db.query('DELETE FROM totp_enrolments WHERE account_id = $1', [accountId]);
  return rowCount === 1;
}

export async function sweepTotpEnrolments(db: Queryable): Promise<number> {
  const { rowCount } = await db.query('DELETE FROM totp_enrolments WHERE expires_at < now()');
  return rowCount ?? 0;
}
