import type { Queryable } from '../db/index.js';

export type LogoutReason = 'session_ended' | 'grant_revoked' | 'account_deleted' | 'session_revoked';
export type DeliveryStatus = 'pending' | 'delivered' | 'failed';

export interface LogoutDelivery {
  id: string;
  clientId: string;
  accountId: string | null;
  sid: string | null;
  reason: LogoutReason;
  status: DeliveryStatus;
  attempts: number;
  nextAttemptAt: Date;
  lastError: string | null;
  createdAt: Date;
  finishedAt: Date | null;
}

interface DeliveryRow {
  id: string;
  client_id: string;
  account_id: string | null;
  sid: string | null;
  reason: LogoutReason;
  status: DeliveryStatus;
  attempts: number;
  next_attempt_at: Date;
  last_error: string | null;
  created_at: Date;
  finished_at: Date | null;
  [key: string]: unknown;
}

/** The columns toDelivery reads, named: a prepared statement's result shape must not change with a migration. */
const deliveryColumns = 'id, client_id, account_id, sid, reason, status, attempts, next_attempt_at, last_error, created_at, finished_at';

const toDelivery = (row: DeliveryRow): LogoutDelivery => ({
  id: String(row.id),
  clientId: row.client_id,
  accountId: row.account_id,
  sid: row.sid,
  reason: row.reason,
  status: row.status,
  attempts: row.attempts,
  nextAttemptAt: row.next_attempt_at,
  lastError: row.last_error,
  createdAt: row.created_at,
  finishedAt: row.finished_at,
});

const queuedListeners = new Set<() => void>();

/** Lets the in-process worker start at once instead of waiting for its next poll. */
export function onDeliveryQueued(listener: () => void): () => void {
  queuedListeners.add(listener);
  return () => queuedListeners.delete(listener);
}

export async function enqueueLogoutDelivery(
  db: Queryable,
  delivery: { issuer: string; clientId: string; accountId: string; sid: string | null | undefined; reason: LogoutReason },
): Promise<void> {
  await db.query('INSERT INTO logout_deliveries (issuer, client_id, account_id, sid, reason) VALUES ($1, $2, $3, $4, $5)', [
    delivery.issuer,
    delivery.clientId,
    delivery.accountId,
    delivery.sid ?? null,
    delivery.reason,
  ]);
  for (const listener of queuedListeners) listener();
}

/**
 * Claims up to `limit` due deliveries of `issuer` for this worker: they stay invisible to other
 * workers (other instances) for `leaseSeconds`, long enough for one attempt with its timeout.
 */
export async function claimDueDeliveries(db: Queryable, issuer: string, limit: number, leaseSeconds: number): Promise<LogoutDelivery[]> {
  const { rows } = await db.query<DeliveryRow>(
    `UPDATE logout_deliveries SET locked_until = now() + make_interval(secs => $2), attempts = attempts + 1
     WHERE id IN (
       SELECT id FROM logout_deliveries
       WHERE status = 'pending' AND next_attempt_at <= now() AND (locked_until IS NULL OR locked_until < now())
         AND (issuer IS NULL OR issuer = $3)
       ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED
     )
     RETURNING ${deliveryColumns}`,
    [limit, leaseSeconds, issuer],
  );
  return rows.map(toDelivery);
}

export async function markDelivered(db: Queryable, id: string): Promise<void> {
  await db.query(
    `UPDATE logout_deliveries SET status = 'delivered', finished_at = now(), locked_until = NULL, last_error = NULL,
       account_id = NULL, sid = NULL WHERE id = $1`,
    [id],
  );
}

/**
 * Schedules another attempt, or gives up for good once the delivery is older than maxAgeSeconds.
 * One statement: a reader never sees a delivery marked failed that still holds its subject.
 */
export async function markAttemptFailed(
  db: Queryable,
  id: string,
  error: string,
  retryInSeconds: number,
  maxAgeSeconds: number,
): Promise<DeliveryStatus> {
  const { rows } = await db.query<{ status: DeliveryStatus }>(
    `WITH outcome AS (
       SELECT id, created_at + make_interval(secs => $4) <= now() + make_interval(secs => $3) AS given_up
       FROM logout_deliveries WHERE id = $1
     )
     UPDATE logout_deliveries d SET
       last_error = left($2, 500),
       locked_until = NULL,
       status = CASE WHEN o.given_up THEN 'failed' ELSE 'pending' END,
       next_attempt_at = now() + make_interval(secs => $3),
       finished_at = CASE WHEN o.given_up THEN now() END,
       account_id = CASE WHEN o.given_up THEN NULL ELSE d.account_id END,
       sid = CASE WHEN o.given_up THEN NULL ELSE d.sid END
     FROM outcome o WHERE d.id = o.id
     RETURNING d.status`,
    [id, error, retryInSeconds, maxAgeSeconds],
  );
  return rows[0]?.status ?? 'failed';
}

export async function listLogoutDeliveries(
  db: Queryable,
  query: { since: Date; status?: DeliveryStatus; clientId?: string; limit: number },
): Promise<LogoutDelivery[]> {
  const { rows } = await db.query<DeliveryRow>(
    `SELECT ${deliveryColumns} FROM logout_deliveries
     WHERE created_at >= $1 AND ($2::text IS NULL OR status = $2) AND ($3::text IS NULL OR client_id = $3)
     ORDER BY created_at DESC, id DESC LIMIT $4`,
    [query.since, query.status ?? null, query.clientId ?? null, query.limit],
  );
  return rows.map(toDelivery);
}
