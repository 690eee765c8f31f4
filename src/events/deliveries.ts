import { randomBytes } from 'node:crypto';
import type { Queryable } from '../db/index.js';

/** The subject of an event as the receiving service knows the person (RFC 9493 iss_sub), or the stream for a verification. */
export type EventSubject = { format: 'iss_sub'; iss: string; sub: string } | { format: 'opaque'; id: string };

export type EventDeliveryStatus = 'pending' | 'delivered' | 'failed';

export interface EventDelivery {
  id: string;
  clientId: string;
  issuer: string;
  eventType: string;
  subject: EventSubject;
  payload: Record<string, unknown>;
  jti: string;
  txn: string;
  status: EventDeliveryStatus;
  attempts: number;
  lastError: string | null;
  createdAt: Date;
  finishedAt: Date | null;
}

type DeliveryRow = {
  id: string;
  client_id: string;
  issuer: string;
  event_type: string;
  subject: EventSubject;
  payload: Record<string, unknown>;
  jti: string;
  txn: string;
  status: EventDeliveryStatus;
  attempts: number;
  last_error: string | null;
  created_at: Date;
  finished_at: Date | null;
};

const toDelivery = (row: DeliveryRow): EventDelivery => ({
  id: String(row.id),
  clientId: row.client_id,
  issuer: row.issuer,
  eventType: row.event_type,
  subject: row.subject,
  payload: row.payload,
  jti: row.jti,
  txn: row.txn,
  status: row.status,
  attempts: row.attempts,
  lastError: row.last_error,
  createdAt: row.created_at,
  finishedAt: row.finished_at,
});

const columns = 'id, client_id, issuer, event_type, subject, payload, jti, txn, status, attempts, last_error, created_at, finished_at';

const queuedListeners = new Set<() => void>();

/** Lets the in-process worker start at once instead of waiting for its next poll. */
export function onEventQueued(listener: () => void): () => void {
  queuedListeners.add(listener);
  return () => queuedListeners.delete(listener);
}

/** A new transaction id: the events one change causes share it (SET `txn`, RFC 8417 §2.2). */
export const newTxn = () => randomBytes(12).toString('base64url');

/** Queues one event for one service, in the caller's transaction. */
export async function enqueueEvent(
  db: Queryable,
  event: {
    clientId: string;
    /** The transmitter's issuer: the SET's `iss`. */
    issuer: string;
    accountId: string | null;
    eventType: string;
    subject: EventSubject;
    payload: Record<string, unknown>;
    txn: string;
  },
): Promise<void> {
  await db.query(
    `INSERT INTO event_deliveries (client_id, issuer, account_id, event_type, subject, payload, jti, txn) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
    [
      event.clientId,
      event.issuer,
      event.accountId,
      event.eventType,
      event.subject,
      event.payload,
      randomBytes(16).toString('base64url'),
      event.txn,
    ],
  );
  for (const listener of queuedListeners) listener();
}

/** Claims up to `limit` due deliveries for this worker, invisible to other workers for `leaseSeconds`. */
export async function claimDueEvents(db: Queryable, limit: number, leaseSeconds: number): Promise<EventDelivery[]> {
  const { rows } = await db.query<DeliveryRow>(
    `UPDATE event_deliveries SET locked_until = now() + make_interval(secs => $2), attempts = attempts + 1
     WHERE id IN (
       SELECT id FROM event_deliveries
       WHERE status = 'pending' AND next_attempt_at <= now() AND (locked_until IS NULL OR locked_until < now())
       ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED
     )
     RETURNING ${columns}`,
    [limit, leaseSeconds],
  );
  return rows.map(toDelivery);
}

export async function markEventDelivered(db: Queryable, id: string): Promise<void> {
  await db.query(
    `UPDATE event_deliveries SET status = 'delivered', finished_at = now(), locked_until = NULL, last_error = NULL WHERE id = $1`,
    [id],
  );
}

/** Schedules another attempt, or gives up once the event is older than maxAgeSeconds; one statement. */
export async function markEventAttemptFailed(
  db: Queryable,
  id: string,
  error: string,
  retryInSeconds: number,
  maxAgeSeconds: number,
): Promise<EventDeliveryStatus> {
  const { rows } = await db.query<{ status: EventDeliveryStatus }>(
    `UPDATE event_deliveries SET
       last_error = left($2, 500),
       locked_until = NULL,
       status = CASE WHEN created_at + make_interval(secs => $4) <= now() + make_interval(secs => $3) THEN 'failed' ELSE 'pending' END,
       next_attempt_at = now() + make_interval(secs => $3),
       finished_at = CASE WHEN created_at + make_interval(secs => $4) <= now() + make_interval(secs => $3) THEN now() END
     WHERE id = $1 RETURNING status`,
    [id, error, retryInSeconds, maxAgeSeconds],
  );
  return rows[0]?.status ?? 'failed';
}

export async function listEventDeliveries(
  db: Queryable,
  query: { since: Date; status?: EventDeliveryStatus; clientId?: string; limit: number },
): Promise<EventDelivery[]> {
  const { rows } = await db.query<DeliveryRow>(
    `SELECT ${columns} FROM event_deliveries
     WHERE created_at >= $1 AND ($2::text IS NULL OR status = $2) AND ($3::text IS NULL OR client_id = $3)
     ORDER BY created_at DESC, id DESC LIMIT $4`,
    [query.since, query.status ?? null, query.clientId ?? null, query.limit],
  );
  return rows.map(toDelivery);
}

/** What was sent to each service about this account (for the person's export). */
export async function eventsAbout(db: Queryable, accountId: string): Promise<EventDelivery[]> {
  const { rows } = await db.query<DeliveryRow>(`SELECT ${columns} FROM event_deliveries WHERE account_id = $1 ORDER BY created_at, id`, [
    accountId,
  ]);
  return rows.map(toDelivery);
}

/**
 * The account is gone: its events keep only the services' own subjects (so what is still
 * being delivered, account-purged among it, reaches them), never a way back to the account,
 * and what they carried about it beyond that goes (an identifier-changed event's address).
 */
export async function forgetEventsAbout(db: Queryable, accountId: string): Promise<void> {
  await db.query(`DELETE FROM event_deliveries WHERE account_id = $1 AND event_type LIKE '%/identifier-changed'`, [accountId]);
  await db.query('UPDATE event_deliveries SET account_id = NULL WHERE account_id = $1', [accountId]);
}

/** Deliveries that ended more than `days` ago (run by the sweeper). */
export async function sweepFinishedEvents(db: Queryable, days: number): Promise<number> {
  const { rowCount } = await db.query(
    `DELETE FROM event_deliveries WHERE status <> 'pending' AND finished_at < now() - make_interval(days => $1)`,
    [days],
  );
  return rowCount ?? 0;
}
