import type { Queryable } from '../db/index.js';

/**
 * When a person first and last used each service (a sign-in reaching it, a token issued to
 * it), for the connected-services list: grants alone cannot tell, their tokens are swept.
 * "Last used" is shown to the minute, so a row updated less than a minute ago is left as it
 * is: every SSO hop records its use, and rewriting the row each time only made dead rows.
 */
export async function recordServiceUse(db: Queryable, accountId: string, clientId: string): Promise<void> {
  await db.query(
    `INSERT INTO service_usage (account_id, client_id)
     SELECT $1, $2 WHERE EXISTS (SELECT 1 FROM accounts WHERE id = $1)
     ON CONFLICT (account_id, client_id) DO UPDATE SET last_used_at = now()
     WHERE service_usage.last_used_at < now() - interval '1 minute'`,
    [accountId, clientId],
  );
}

/** Forgets the dates once the person disconnects the service. */
export async function forgetServiceUse(tx: Queryable, accountId: string, clientId: string): Promise<void> {
  await tx.query('DELETE FROM service_usage WHERE account_id = $1 AND client_id = $2', [accountId, clientId]);
}

export async function listServiceUse(db: Queryable, accountId: string) {
  const { rows } = await db.query<{ client_id: string; first_used_at: Date; last_used_at: Date }>(
    'SELECT client_id, first_used_at, last_used_at FROM service_usage WHERE account_id = $1 ORDER BY client_id',
    [accountId],
  );
  return rows.map((row) => ({ clientId: row.client_id, firstUsedAt: row.first_used_at, lastUsedAt: row.last_used_at }));
}
