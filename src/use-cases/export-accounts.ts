import { recordAuditEvent } from '../audit/log.js';
import type { Queryable } from '../db/index.js';

/**
 * Writes every account in the import format (idp accounts export), so a group is never
 * locked in: legacy_id is our account id; with password hashes, our argon2id hash as its
 * PHC string (or, before the first sign-in, the hash the service brought). Read in pages,
 * so the size of the user base does not matter. Exporting hashes is audited.
 */
export async function exportAccounts(
  db: Queryable,
  options: { withPasswordHashes: boolean; pageSize?: number },
  write: (line: string) => Promise<void>,
): Promise<{ accounts: number; withPasswordHashes: boolean }> {
  const pageSize = options.pageSize ?? 5000;
  let after = '';
  let accounts = 0;
  for (;;) {
    const { rows } = await db.query<{
      id: string;
      email: string;
      email_verified: boolean;
      name: string | null;
      given_name: string | null;
      family_name: string | null;
      locale: string | null;
      password_hash: string | null;
    }>(
      `SELECT a.id, a.email, a.email_verified, a.name, a.given_name, a.family_name, a.locale,
              coalesce(a.password_hash, (SELECT min(hash) FROM imported_passwords p WHERE p.account_id = a.id)) AS password_hash
       FROM accounts a WHERE a.id > $1 ORDER BY a.id LIMIT $2`,
      [after, pageSize],
    );
    for (const row of rows) {
      const record = {
        email: row.email,
        email_verified: row.email_verified,
        name: row.name,
        given_name: row.given_name,
        family_name: row.family_name,
        locale: row.locale,
        ...(options.withPasswordHashes ? { password_hash: row.password_hash } : {}),
        legacy_id: row.id,
      };
      await write(`${JSON.stringify(record)}\n`);
    }
    accounts += rows.length;
    if (rows.length < pageSize) break;
    after = rows[rows.length - 1]!.id;
  }
  await recordAuditEvent(db, {
    event: 'accounts.exported',
    outcome: 'success',
    actor: 'admin',
    details: { accounts, withPasswordHashes: options.withPasswordHashes },
  });
  return { accounts, withPasswordHashes: options.withPasswordHashes };
}
