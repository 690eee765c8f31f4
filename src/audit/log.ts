import { z } from 'zod';
import type { Queryable } from '../db/index.js';

export const auditEventNames = [
  'sign_in',
  'sign_in.locked',
  'sign_in.second_step',
  'factor.added',
  'factor.removed',
  'factor.renamed',
  'recovery_codes.issued',
  'recovery_code.used',
  'factors.reset',
  'account.created',
  'account.deleted',
  'account.disabled',
  'accounts.imported',
  'accounts.exported',
  'account.enabled',
  'consent.withdrawn',
  'password.changed',
  'password.reset_requested',
  'password.reset',
  'email.verified',
  'email.change_requested',
  'email.changed',
  'email.change_reverted',
  'sessions.ended',
  'profile.updated',
  'data.exported',
  'consent',
  'grant.revoked',
  'client.added',
  'client.updated',
  'client.removed',
  'client.secret_rotated',
  'key.rotated',
] as const;
export type AuditEventName = (typeof auditEventNames)[number];

export interface AuditEvent {
  event: AuditEventName;
  outcome: 'success' | 'failure' | 'denied';
  /** An account id, 'admin' for the CLI; never an email or a name. */
  actor?: string | null;
  /**
   * The account the event concerns, when it is not the actor (a failed sign-in against it,
   * an administrator's change). Defaults to the actor when that is an account.
   */
  accountId?: string | null;
  clientId?: string | null;
  ip?: string | null;
  /** Non-personal context (e.g. scopes, reason codes). */
  details?: Record<string, string | number | boolean | string[]>;
}

export interface StoredAuditEvent extends Required<Omit<AuditEvent, 'details'>> {
  id: string;
  occurredAt: Date;
  details: Record<string, unknown>;
}

export async function recordAuditEvent(db: Queryable, event: AuditEvent): Promise<void> {
  await recordAuditEvents(db, [event]);
}

const columnsOf = (event: AuditEvent) => [
  event.event,
  event.outcome,
  event.actor ?? null,
  event.accountId ?? (event.actor && event.actor !== 'admin' ? event.actor : null),
  event.clientId ?? null,
  event.ip ?? null,
  event.details ?? {},
];

/** Several events of one step in one statement (a second step and the sign-in it completes), in their order. */
export async function recordAuditEvents(db: Queryable, events: readonly AuditEvent[]): Promise<void> {
  if (events.length === 0) return;
  const rows = events.map((_, row) => `(${Array.from({ length: 7 }, (_, column) => `$${row * 7 + column + 1}`).join(', ')})`);
  await db.query(
    `INSERT INTO audit_events (event, outcome, actor, account_id, client_id, ip, details) VALUES ${rows.join(', ')}`,
    events.flatMap(columnsOf),
  );
}

/**
 * After an account is deleted nothing about the person may remain but a minimal record that
 * it was deleted: every event about the account goes (its sign-ins with their IP and
 * browser, failures against it, administrators' changes to it), inside the deletion's
 * transaction.
 */
export async function forgetAccountEvents(tx: Queryable, accountId: string): Promise<void> {
  await tx.query('DELETE FROM audit_events WHERE account_id = $1 OR actor = $1', [accountId]);
}

export const auditQuerySchema = z.object({
  since: z.date(),
  event: z.enum(auditEventNames, { message: `must be one of ${auditEventNames.join(', ')}` }).optional(),
  limit: z.number().int().min(1).max(10000).default(1000),
});

export async function listAuditEvents(db: Queryable, query: z.input<typeof auditQuerySchema>): Promise<StoredAuditEvent[]> {
  const { since, event, limit } = auditQuerySchema.parse(query);
  const { rows } = await db.query<{
    id: string;
    occurred_at: Date;
    event: AuditEventName;
    outcome: AuditEvent['outcome'];
    actor: string | null;
    account_id: string | null;
    client_id: string | null;
    ip: string | null;
    details: Record<string, unknown>;
  }>(
    `SELECT id, occurred_at, event, outcome, actor, account_id, client_id, ip, details FROM audit_events
     WHERE occurred_at >= $1 AND ($2::text IS NULL OR event = $2) ORDER BY occurred_at, id LIMIT $3`,
    [since, event ?? null, limit],
  );
  return rows.map((row) => ({
    id: String(row.id),
    occurredAt: row.occurred_at,
    event: row.event,
    outcome: row.outcome,
    actor: row.actor,
    accountId: row.account_id,
    clientId: row.client_id,
    ip: row.ip,
    details: row.details,
  }));
}

/** Deletes events older than the retention period (run by the sweeper). */
export async function pruneAuditEvents(db: Queryable, retentionDays: number): Promise<number> {
  const { rowCount } = await db.query(`DELETE FROM audit_events WHERE occurred_at < now() - make_interval(days => $1)`, [retentionDays]);
  return rowCount ?? 0;
}
