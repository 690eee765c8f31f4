import { z } from 'zod';
import type { Queryable } from '../db/index.js';

export const auditEventNames = [
  'sign_in',
  'sign_in.locked',
  'account.created',
  'account.deleted',
  'password.changed',
  'password.reset_requested',
  'password.reset',
  'email.verified',
  'email.change_requested',
  'email.changed',
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
  await db.query('INSERT INTO audit_events (event, outcome, actor, client_id, ip, details) VALUES ($1, $2, $3, $4, $5, $6)', [
    event.event,
    event.outcome,
    event.actor ?? null,
    event.clientId ?? null,
    event.ip ?? null,
    event.details ?? {},
  ]);
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
    client_id: string | null;
    ip: string | null;
    details: Record<string, unknown>;
  }>(
    `SELECT id, occurred_at, event, outcome, actor, client_id, ip, details FROM audit_events
     WHERE occurred_at >= $1 AND ($2::text IS NULL OR event = $2) ORDER BY occurred_at, id LIMIT $3`,
    [since, event ?? null, limit],
  );
  return rows.map((row) => ({
    id: String(row.id),
    occurredAt: row.occurred_at,
    event: row.event,
    outcome: row.outcome,
    actor: row.actor,
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
