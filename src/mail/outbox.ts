import type { Queryable } from '../db/index.js';
import type { Mail } from './mailer.js';

/** Keeps a message that was not sent (no SMTP server configured), for developers and tests to read. */
export async function writeToOutbox(db: Queryable, mail: Mail): Promise<void> {
  await db.query('INSERT INTO outbox (account_id, purpose, language, recipient, subject, body) VALUES ($1, $2, $3, $4, $5, $6)', [
    mail.accountId,
    mail.purpose,
    mail.language,
    mail.to,
    mail.subject,
    mail.text,
  ]);
}

/** Deletes outbox messages older than a week (run by the sweeper): they hold addresses and links. */
export async function sweepOutbox(db: Queryable): Promise<number> {
  const { rowCount } = await db.query(`DELETE FROM outbox WHERE created_at < now() - interval '7 days'`);
  return rowCount ?? 0;
}
