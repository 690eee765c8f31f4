import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { Queryable } from '../db/index.js';
import { Conflict, NotFound } from '../errors.js';
import { parseOrThrow } from '../validation.js';
import { emailKey } from './email-key.js';
import { isTimeZone } from '../i18n/time-zones.js';
import { verifyLegacyHash } from './legacy-hashes.js';
import { dummyPasswordHash, hashPassword, passwordNeedsRehash, passwordSchema, verifyPassword } from './passwords.js';

export interface Account {
  id: string;
  email: string;
  emailVerified: boolean;
  name: string | null;
  givenName: string | null;
  familyName: string | null;
  locale: string | null;
  /** An IANA time zone (the zoneinfo claim); null: the default of the person's language. */
  zoneinfo: string | null;
  createdAt: Date;
  updatedAt: Date;
  /** Set while an administrator has disabled the account: it cannot sign in. */
  disabledAt: Date | null;
}

export const emailSchema = z
  .string({ message: 'Enter your email address.' })
  .trim()
  .max(254, 'That email address is too long.')
  .pipe(z.email({ message: 'Enter a valid email address.' }));

// Postgres text cannot hold NUL, and no name needs one.
const withoutNul = (value: string) => !value.includes('\u0000');

export const optionalText = (max: number) =>
  z
    .string()
    .trim()
    .max(max, `Use at most ${max} characters.`)
    .refine(withoutNul, 'Remove the control characters.')
    .transform((value) => (value === '' ? null : value))
    .nullable()
    .optional();

export const profileSchema = z.object({
  name: optionalText(200),
  givenName: optionalText(100),
  familyName: optionalText(100),
  locale: z
    .string()
    .trim()
    .regex(/^[a-zA-Z]{2,3}(-[a-zA-Z0-9]{2,8})*$/, 'Use a language tag such as en or ja-JP.')
    .nullable()
    .optional(),
  zoneinfo: z.string().trim().refine(isTimeZone, 'Choose a time zone from the list.').nullable().optional(),
});

export const newAccountSchema = profileSchema.extend({
  email: emailSchema,
  password: passwordSchema,
  emailVerified: z.boolean().optional(),
});

export type NewAccount = z.input<typeof newAccountSchema>;
export type ProfileUpdate = z.input<typeof profileSchema>;

export interface AccountRow {
  id: string;
  email: string;
  email_verified: boolean;
  /** Null for an imported account that has no password of ours yet (see imported_passwords). */
  password_hash: string | null;
  name: string | null;
  given_name: string | null;
  family_name: string | null;
  locale: string | null;
  zoneinfo: string | null;
  created_at: Date;
  updated_at: Date;
  disabled_at: Date | null;
  [key: string]: unknown;
}

const accountColumns =
  'id, email, email_verified, password_hash, name, given_name, family_name, locale, zoneinfo, created_at, updated_at, disabled_at';

/** The account's columns qualified by `alias`, for a statement that reads an account joined to another row. */
export const accountColumnsOf = (alias: string) =>
  accountColumns
    .split(', ')
    .map((column) => `${alias}.${column}`)
    .join(', ');

export function toAccount(row: AccountRow): Account {
  return {
    id: row.id,
    email: row.email,
    emailVerified: row.email_verified,
    name: row.name,
    givenName: row.given_name,
    familyName: row.family_name,
    locale: row.locale,
    zoneinfo: row.zoneinfo,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    disabledAt: row.disabled_at,
  };
}

/** Opaque and stable; never starting with '-' or '_', so it can follow a CLI flag. */
export function newAccountId(): string {
  return randomBytes(16).toString('base64url').replace(/^[-_]/, 'a');
}

export async function createAccount(db: Queryable, input: NewAccount): Promise<Account> {
  const data = parseOrThrow(newAccountSchema, input);
  const passwordHash = await hashPassword(data.password);
  try {
    const { rows } = await db.query<AccountRow>(
      `INSERT INTO accounts (id, email, email_key, email_verified, password_hash, name, given_name, family_name, locale, zoneinfo)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING ${accountColumns}`,
      [
        newAccountId(),
        data.email,
        emailKey(data.email),
        data.emailVerified ?? false,
        passwordHash,
        data.name ?? null,
        data.givenName ?? null,
        data.familyName ?? null,
        data.locale ?? null,
        data.zoneinfo ?? null,
      ],
    );
    return toAccount(rows[0]!);
  } catch (error) {
    if ((error as { code?: string }).code === '23505') throw new Conflict('an account with that email already exists');
    throw error;
  }
}

export async function findAccountById(db: Queryable, id: string): Promise<Account | undefined> {
  if (id.includes('\u0000')) return undefined;
  const { rows } = await db.query<AccountRow>(`SELECT ${accountColumns} FROM accounts WHERE id = $1`, [id]);
  return rows[0] ? toAccount(rows[0]) : undefined;
}

export async function findAccountByEmail(db: Queryable, email: string): Promise<Account | undefined> {
  if (email.includes('\u0000')) return undefined;
  const { rows } = await db.query<AccountRow>(`SELECT ${accountColumns} FROM accounts WHERE email_key = $1`, [emailKey(email)]);
  return rows[0] ? toAccount(rows[0]) : undefined;
}

/** Finds by id, or by email when the reference contains "@"; throws NotFound. */
export async function getAccount(db: Queryable, idOrEmail: string): Promise<Account> {
  const account = idOrEmail.includes('@') ? await findAccountByEmail(db, idOrEmail) : await findAccountById(db, idOrEmail);
  if (!account) throw new NotFound('no such account');
  return account;
}

export async function listAccounts(db: Queryable, options: { limit: number; offset: number }): Promise<Account[]> {
  const { rows } = await db.query<AccountRow>(`SELECT ${accountColumns} FROM accounts ORDER BY created_at, id LIMIT $1 OFFSET $2`, [
    options.limit,
    options.offset,
  ]);
  return rows.map(toAccount);
}

export type PasswordCheck<Extra = Record<string, never>> =
  { matched: true; account: Account; extra: Extra } | { matched: false; accountId: string | undefined };

/**
 * Checks an email and password. Unknown emails cost one argon2 verification too, so the
 * answer and its timing do not reveal whether an account exists. An imported account is
 * also checked against the hashes its services brought (legacy-hashes.ts); at the first
 * sign-in that matches, our argon2id hash of the password replaces all of them. Rehashes
 * the password when the stored hash uses older parameters. A mismatch names the account it
 * was for, if any, for the audit log (never for the person asking).
 *
 * `alsoRead`: more columns about the account `a` (an SQL select list) that the caller needs
 * once the password is right, read in the same statement and returned as `extra` only then.
 */
export async function checkSignInPassword<Extra extends object = Record<string, never>>(
  db: Queryable,
  email: string,
  password: string,
  alsoRead?: string,
): Promise<PasswordCheck<Extra>> {
  if (email.includes('\u0000')) email = ''; // cannot match; still pays the dummy verification below
  const { rows } = await db.query<AccountRow & { imported: string[] | null }>(
    `SELECT ${accountColumns}, (SELECT array_agg(hash) FROM imported_passwords p WHERE p.account_id = a.id) AS imported
            ${alsoRead ? `, ${alsoRead}` : ''}
     FROM accounts a WHERE email_key = $1`,
    [emailKey(email)],
  );
  const row = rows[0];
  let matches = await verifyPassword(row?.password_hash ?? (await dummyPasswordHash()), password);
  const imported = row?.imported ?? [];
  for (const hash of imported) matches ||= await verifyLegacyHash(hash, password);
  if (!row || !matches) return { matched: false, accountId: row?.id };
  if (imported.length > 0) {
    await storePasswordHash(db, row.id, await hashPassword(password));
  } else if (row.password_hash && passwordNeedsRehash(row.password_hash)) {
    await db.query('UPDATE accounts SET password_hash = $2 WHERE id = $1 AND password_hash = $3', [
      row.id,
      await hashPassword(password),
      row.password_hash,
    ]);
  }
  return { matched: true, account: toAccount(row), extra: row as unknown as Extra };
}

/** The account when email and password match (see checkSignInPassword). */
export async function authenticate(db: Queryable, email: string, password: string): Promise<Account | undefined> {
  const check = await checkSignInPassword(db, email, password);
  return check.matched ? check.account : undefined;
}

/**
 * Stores a hash made beforehand with hashPassword, so a transaction is not held open while
 * argon2 runs. The caller has validated the password with passwordSchema.
 */
export async function storePasswordHash(db: Queryable, id: string, passwordHash: string): Promise<void> {
  // One statement: the imported hashes go with the change, so no old password works after it.
  const { rowCount } = await db.query(
    `WITH forgotten AS (DELETE FROM imported_passwords WHERE account_id = $1)
     UPDATE accounts SET password_hash = $2 WHERE id = $1`,
    [id, passwordHash],
  );
  if (!rowCount) throw new NotFound('no such account');
}

/** Checks the password of a known account (re-authentication before a sensitive change). */
export async function checkPassword(db: Queryable, id: string, password: string): Promise<boolean> {
  const { rows } = await db.query<{ password_hash: string | null }>('SELECT password_hash FROM accounts WHERE id = $1', [id]);
  return verifyPassword(rows[0]?.password_hash ?? (await dummyPasswordHash()), password);
}

/** Changes the released profile claims; only these four are editable by their owner. */
export async function updateProfile(db: Queryable, id: string, input: ProfileUpdate): Promise<Account> {
  const data = parseOrThrow(profileSchema, input);
  const { rows } = await db.query<AccountRow>(
    `UPDATE accounts SET name = $2, given_name = $3, family_name = $4, locale = $5, zoneinfo = $6, updated_at = now()
     WHERE id = $1 RETURNING ${accountColumns}`,
    [id, data.name ?? null, data.givenName ?? null, data.familyName ?? null, data.locale ?? null, data.zoneinfo ?? null],
  );
  if (!rows[0]) throw new NotFound('no such account');
  return toAccount(rows[0]);
}

/** Marks the address verified, but only while it is still the account's address. */
export async function markEmailVerified(db: Queryable, id: string, email: string): Promise<boolean> {
  const { rowCount } = await db.query('UPDATE accounts SET email_verified = true, updated_at = now() WHERE id = $1 AND email_key = $2', [
    id,
    emailKey(email),
  ]);
  return rowCount === 1;
}

/** Replaces the address with one whose ownership was just proven; Conflict if another account took it. */
export async function replaceVerifiedEmail(db: Queryable, id: string, email: string): Promise<void> {
  try {
    const { rowCount } = await db.query(
      'UPDATE accounts SET email = $2, email_key = $3, email_verified = true, updated_at = now() WHERE id = $1',
      [id, email, emailKey(email)],
    );
    if (!rowCount) throw new NotFound('no such account');
  } catch (error) {
    if ((error as { code?: string }).code === '23505') throw new Conflict('an account with that email already exists');
    throw error;
  }
}

/**
 * Deletes the account row, inside the caller's transaction. Rows of the account's own tables
 * (links, account-page sessions, outbox, usage) go with it by ON DELETE CASCADE; protocol
 * artefacts and audit events are the delete-account workflow's business.
 */
export async function deleteAccountRow(tx: Queryable, id: string): Promise<void> {
  const { rowCount } = await tx.query('DELETE FROM accounts WHERE id = $1', [id]);
  if (!rowCount) throw new NotFound('no such account');
}

/** Disables or enables an account; false when it already was. */
export async function setAccountDisabled(db: Queryable, id: string, disabled: boolean): Promise<boolean> {
  const { rowCount } = await db.query(
    `UPDATE accounts SET disabled_at = CASE WHEN $2 THEN now() END WHERE id = $1 AND (disabled_at IS NOT NULL) <> $2`,
    [id, disabled],
  );
  return rowCount === 1;
}
