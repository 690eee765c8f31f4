import type { Queryable } from '../db/index.js';
import { decryptJson, encryptJson, envelopeSchema, type KeyRing } from '../security/key-encryption.js';
import type { Mail } from './mailer.js';

/**
 * The queue of mail to send over SMTP (mail_deliveries). Bodies carry live links, so they
 * are sealed under the key-encryption key; a body and its recipient are cleared as soon as
 * the message is sent or given up.
 */

export type MailStatus = 'pending' | 'sent' | 'failed';

export interface QueuedMail {
  id: string;
  purpose: string;
  to: string;
  subject: string;
  text: string;
  attempts: number;
  createdAt: Date;
}

export interface MailDelivery {
  id: string;
  purpose: string;
  language: string;
  status: MailStatus;
  attempts: number;
  lastError: string | null;
  createdAt: Date;
  finishedAt: Date | null;
}

const aad = (id: string) => `mail:${id}`;

const queuedListeners = new Set<() => void>();

/** Lets the in-process worker send at once instead of waiting for its next poll. */
export function onMailQueued(listener: () => void): () => void {
  queuedListeners.add(listener);
  return () => queuedListeners.delete(listener);
}

export async function queueMail(db: Queryable, keys: KeyRing, mail: Mail): Promise<void> {
  // The id first: the body is sealed with it as associated data (a body moved to another row does not open).
  const { rows } = await db.query<{ id: string }>(`SELECT nextval(pg_get_serial_sequence('mail_deliveries', 'id'))::text AS id`);
  const id = rows[0]!.id;
  await db.query(
    `INSERT INTO mail_deliveries (id, account_id, purpose, language, recipient, subject, sealed_body) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
    [id, mail.accountId, mail.purpose, mail.language, mail.to, mail.subject, encryptJson(mail.text, aad(id), keys.primary)],
  );
  for (const listener of queuedListeners) listener();
}

/** Claims due messages for this worker, invisible to other workers (instances) for `leaseSeconds`. */
export async function claimDueMail(db: Queryable, keys: KeyRing, limit: number, leaseSeconds: number): Promise<QueuedMail[]> {
  const { rows } = await db.query<{
    id: string;
    purpose: string;
    recipient: string;
    subject: string;
    sealed_body: unknown;
    attempts: number;
    created_at: Date;
  }>(
    `UPDATE mail_deliveries SET locked_until = now() + make_interval(secs => $2), attempts = attempts + 1
     WHERE id IN (
       SELECT id FROM mail_deliveries
       WHERE status = 'pending' AND next_attempt_at <= now() AND (locked_until IS NULL OR locked_until < now())
       ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED
     )
     RETURNING id, purpose, recipient, subject, sealed_body, attempts, created_at`,
    [limit, leaseSeconds],
  );
  return rows.map((row) => ({
    id: String(row.id),
    purpose: row.purpose,
    to: row.recipient,
    subject: row.subject,
    text: String(decryptJson(envelopeSchema.parse(row.sealed_body), aad(String(row.id)), keys.all)),
    attempts: row.attempts,
    createdAt: row.created_at,
  }));
}

export async function markMailSent(db: Queryable, id: string): Promise<void> {
  await db.query(
    `UPDATE mail_deliveries SET status = 'sent', finished_at = now(), sealed_body = NULL, recipient = NULL, last_error = NULL WHERE id = $1`,
    [id],
  );
}

/** A failed attempt: retried later, or given up (permanent error, or past the deadline). */
export async function markMailAttemptFailed(
  db: Queryable,
  id: string,
  failure: { error: string; permanent: boolean; retryInSeconds: number; maxAgeSeconds: number },
): Promise<MailStatus> {
  const { rows } = await db.query<{ status: MailStatus }>(
    `UPDATE mail_deliveries SET last_error = $2, locked_until = NULL, next_attempt_at = now() + make_interval(secs => $3),
       status = CASE WHEN $5 OR created_at + make_interval(secs => $4) <= now() + make_interval(secs => $3) THEN 'failed' ELSE 'pending' END
     WHERE id = $1 RETURNING status`,
    [id, failure.error.slice(0, 500), failure.retryInSeconds, failure.maxAgeSeconds, failure.permanent],
  );
  const status = rows[0]?.status ?? 'failed';
  if (status === 'failed') {
    await db.query(`UPDATE mail_deliveries SET finished_at = now(), sealed_body = NULL, recipient = NULL WHERE id = $1`, [id]);
  }
  return status;
}

export async function listMailDeliveries(
  db: Queryable,
  query: { since: Date; status?: MailStatus; limit: number },
): Promise<MailDelivery[]> {
  const { rows } = await db.query<{
    id: string;
    purpose: string;
    language: string;
    status: MailStatus;
    attempts: number;
    last_error: string | null;
    created_at: Date;
    finished_at: Date | null;
  }>(
    `SELECT id, purpose, language, status, attempts, last_error, created_at, finished_at FROM mail_deliveries
     WHERE created_at >= $1 AND ($2::text IS NULL OR status = $2) ORDER BY created_at DESC, id DESC LIMIT $3`,
    [query.since, query.status ?? null, query.limit],
  );
  return rows.map((row) => ({
    id: String(row.id),
    purpose: row.purpose,
    language: row.language,
    status: row.status,
    attempts: row.attempts,
    lastError: row.last_error,
    createdAt: row.created_at,
    finishedAt: row.finished_at,
  }));
}

/** Outcomes older than a week go (run by the sweeper), like the development outbox. */
export async function sweepFinishedMail(db: Queryable): Promise<number> {
  const { rowCount } = await db.query(`DELETE FROM mail_deliveries WHERE status <> 'pending' AND finished_at < now() - interval '7 days'`);
  return rowCount ?? 0;
}
