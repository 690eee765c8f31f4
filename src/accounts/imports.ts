import type { Queryable } from '../db/index.js';

/** The statements of an account import, each over a whole batch of rows. */

export interface ExistingAccount {
  id: string;
  emailKey: string;
  emailVerified: boolean;
}

/** Rows of this source imported before: legacy id → the account (null once it was deleted). */
export async function importedBefore(db: Queryable, source: string, legacyIds: string[]): Promise<Map<string, string | null>> {
  const { rows } = await db.query<{ legacy_id: string; account_id: string | null }>(
    // A join on both key columns: `legacy_id = ANY(...)` let the planner, with the statistics
    // of a table still being filled, scan every row of the source per batch (bench/RESULTS.md).
    `SELECT i.legacy_id, i.account_id FROM unnest($2::text[]) AS t(legacy_id)
     JOIN account_imports i ON i.source = $1 AND i.legacy_id = t.legacy_id`,
    [source, legacyIds],
  );
  return new Map(rows.map((row) => [row.legacy_id, row.account_id]));
}

/** Accounts that hold these normalised addresses already, locked until the batch commits. */
export async function accountsByEmailKey(db: Queryable, keys: string[]): Promise<Map<string, ExistingAccount>> {
  const { rows } = await db.query<{ id: string; email_key: string; email_verified: boolean }>(
    'SELECT id, email_key, email_verified FROM accounts WHERE email_key = ANY($1::text[]) FOR UPDATE',
    [keys],
  );
  return new Map(rows.map((row) => [row.email_key, { id: row.id, emailKey: row.email_key, emailVerified: row.email_verified }]));
}

export interface NewImportedAccount {
  id: string;
  email: string;
  emailKey: string;
  emailVerified: boolean;
  name: string | null;
  givenName: string | null;
  familyName: string | null;
  locale: string | null;
}

/**
 * Inserts the new accounts in one statement, without a password of ours. Returns the ids
 * inserted: an address registered meanwhile (by a person, between the lookup and this) is
 * left out, and its row reported.
 */
export async function insertImportedAccounts(db: Queryable, accounts: NewImportedAccount[]): Promise<Set<string>> {
  if (accounts.length === 0) return new Set();
  const column = <K extends keyof NewImportedAccount>(key: K) => accounts.map((account) => account[key]);
  const { rows } = await db.query<{ id: string }>(
    `INSERT INTO accounts (id, email, email_key, email_verified, password_hash, name, given_name, family_name, locale)
     SELECT id, email, email_key, email_verified, NULL, name, given_name, family_name, locale
     FROM unnest($1::text[], $2::text[], $3::text[], $4::boolean[], $5::text[], $6::text[], $7::text[], $8::text[])
       AS t(id, email, email_key, email_verified, name, given_name, family_name, locale)
     ON CONFLICT (email_key) DO NOTHING RETURNING id`,
    [
      column('id'),
      column('email'),
      column('emailKey'),
      column('emailVerified'),
      column('name'),
      column('givenName'),
      column('familyName'),
      column('locale'),
    ],
  );
  return new Set(rows.map((row) => row.id));
}

/** Fills the profile fields an account lacks; what the person set is never overwritten. */
export async function fillProfileGaps(
  db: Queryable,
  rows: { id: string; name: string | null; givenName: string | null; familyName: string | null; locale: string | null }[],
): Promise<void> {
  if (rows.length === 0) return;
  await db.query(
    `UPDATE accounts a SET name = coalesce(a.name, t.name), given_name = coalesce(a.given_name, t.given_name),
            family_name = coalesce(a.family_name, t.family_name), locale = coalesce(a.locale, t.locale)
     FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[]) AS t(id, name, given_name, family_name, locale)
     WHERE a.id = t.id AND (a.name IS NULL OR a.given_name IS NULL OR a.family_name IS NULL OR a.locale IS NULL)`,
    [
      rows.map((row) => row.id),
      rows.map((row) => row.name),
      rows.map((row) => row.givenName),
      rows.map((row) => row.familyName),
      rows.map((row) => row.locale),
    ],
  );
}

export async function insertImportedPasswords(db: Queryable, source: string, rows: { accountId: string; hash: string }[]): Promise<void> {
  if (rows.length === 0) return;
  await db.query(
    `INSERT INTO imported_passwords (account_id, hash, source)
     SELECT account_id, hash, $3 FROM unnest($1::text[], $2::text[]) AS t(account_id, hash)
     ON CONFLICT (account_id, hash) DO NOTHING`,
    [rows.map((row) => row.accountId), rows.map((row) => row.hash), source],
  );
}

export async function recordImports(
  db: Queryable,
  source: string,
  rows: { legacyId: string; accountId: string; outcome: 'created' | 'merged' }[],
): Promise<void> {
  if (rows.length === 0) return;
  await db.query(
    `INSERT INTO account_imports (source, legacy_id, account_id, outcome)
     SELECT $4, legacy_id, account_id, outcome FROM unnest($1::text[], $2::text[], $3::text[]) AS t(legacy_id, account_id, outcome)`,
    [rows.map((row) => row.legacyId), rows.map((row) => row.accountId), rows.map((row) => row.outcome), source],
  );
}

/** Which services' user stores an account came from, under which of their ids (for the person's export). */
export async function importsOf(db: Queryable, accountId: string) {
  const { rows } = await db.query<{ source: string; legacy_id: string; outcome: string; imported_at: Date }>(
    'SELECT source, legacy_id, outcome, imported_at FROM account_imports WHERE account_id = $1 ORDER BY imported_at',
    [accountId],
  );
  return rows.map((row) => ({ clientId: row.source || null, legacyId: row.legacy_id, outcome: row.outcome, importedAt: row.imported_at }));
}
