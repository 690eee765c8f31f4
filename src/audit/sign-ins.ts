import type { Queryable } from '../db/index.js';

/** One successful sign-in as the account page shows it: no IP address, only coarse client facts. */
export interface SignInRecord {
  occurredAt: Date;
  /** Null for a sign-in to the account pages themselves. */
  clientId: string | null;
  clientName: string | null;
  browser: string | null;
  os: string | null;
}

export async function listRecentSignIns(db: Queryable, accountId: string, limit = 20): Promise<SignInRecord[]> {
  const { rows } = await db.query<{
    occurred_at: Date;
    client_id: string | null;
    client_name: string | null;
    details: { browser?: unknown; os?: unknown };
  }>(
    `SELECT e.occurred_at, e.client_id, c.metadata->>'client_name' AS client_name, e.details
     FROM audit_events e LEFT JOIN clients c ON c.id = e.client_id
     WHERE e.actor = $1 AND e.event = 'sign_in' AND e.outcome = 'success'
     ORDER BY e.occurred_at DESC, e.id DESC LIMIT $2`,
    [accountId, limit],
  );
  return rows.map((row) => ({
    occurredAt: row.occurred_at,
    clientId: row.client_id,
    clientName: row.client_name ?? row.client_id,
    browser: typeof row.details.browser === 'string' ? row.details.browser : null,
    os: typeof row.details.os === 'string' ? row.details.os : null,
  }));
}

/** Every security event about the account, for the account's data export. */
export async function listAccountEvents(db: Queryable, accountId: string) {
  const { rows } = await db.query<{
    occurred_at: Date;
    event: string;
    outcome: string;
    client_id: string | null;
    ip: string | null;
    details: Record<string, unknown>;
  }>(`SELECT occurred_at, event, outcome, client_id, ip, details FROM audit_events WHERE account_id = $1 ORDER BY occurred_at, id`, [
    accountId,
  ]);
  return rows.map((row) => ({
    occurredAt: row.occurred_at,
    event: row.event,
    outcome: row.outcome,
    clientId: row.client_id,
    ip: row.ip,
    details: row.details,
  }));
}
