import { z } from 'zod';
import { auditEventNames, listAuditEvents } from '../../audit/log.js';
import { parseOrThrow } from '../../validation.js';
import type { Command } from '../command.js';
import { describeTable } from '../output.js';

const relative = /^(\d+)([mhd])$/;
const unitSeconds = { m: 60, h: 3600, d: 86400 } as const;

/** --since takes an ISO date/time or a relative span such as 30m, 24h, 7d. */
export const sinceSchema = z
  .string()
  .default('24h')
  .transform((value, ctx) => {
    const span = relative.exec(value);
    if (span) return new Date(Date.now() - Number(span[1]) * unitSeconds[span[2] as keyof typeof unitSeconds] * 1000);
    const date = new Date(value);
    if (Number.isNaN(date.getTime())) {
      ctx.addIssue({ code: 'custom', message: 'use an ISO date (2026-11-01 or 2026-11-01T09:00:00Z) or a span like 24h or 7d' });
      return z.NEVER;
    }
    return date;
  });

const auditFlags = z.object({
  since: sinceSchema,
  event: z.enum(auditEventNames, { message: `must be one of ${auditEventNames.join(', ')}` }).optional(),
  limit: z.coerce.number().int().min(1).max(10000).default(1000),
});

export const auditCommands: Command[] = [
  {
    name: 'audit',
    usage: 'idp audit [--since <ISO date|24h|7d>] [--event <name>] [--limit <n>]',
    summary: 'security events (sign-ins, lockouts, consents, revocations, admin changes)',
    options: { since: { type: 'string' }, event: { type: 'string' }, limit: { type: 'string' } },
    async run(runtime, values) {
      const query = parseOrThrow(auditFlags, { since: values['since'], event: values['event'], limit: values['limit'] });
      const events = await listAuditEvents(runtime.db, query);
      return {
        json: events,
        text: describeTable(
          events.map((e) => ({ time: e.occurredAt, event: e.event, outcome: e.outcome, actor: e.actor, client: e.clientId, ip: e.ip })),
          ['time', 'event', 'outcome', 'actor', 'client', 'ip'],
        ),
      };
    },
  },
];
