import { z } from 'zod';
import { listMailDeliveries } from '../../mail/deliveries.js';
import { parseOrThrow } from '../../validation.js';
import type { Command } from '../command.js';
import { describeTable } from '../output.js';
import { deliveryFlags } from './sessions.js';

const mailFlags = deliveryFlags.omit({ status: true, client: true }).extend({
  status: z.enum(['pending', 'sent', 'failed'], { message: 'must be pending, sent or failed' }).optional(),
});

export const mailCommands: Command[] = [
  {
    name: 'mail deliveries',
    usage: 'idp mail deliveries [--since <ISO date|24h|7d>] [--status pending|sent|failed] [--limit <n>]',
    summary: 'mail queued for SMTP and its outcome, newest first (never an address or a body)',
    options: { since: { type: 'string' }, status: { type: 'string' }, limit: { type: 'string' } },
    async run(runtime, values) {
      const query = parseOrThrow(mailFlags, { since: values['since'], status: values['status'], limit: values['limit'] });
      const deliveries = await listMailDeliveries(runtime.db, query);
      return {
        json: deliveries,
        text: describeTable(
          deliveries.map((d) => ({
            id: d.id,
            purpose: d.purpose,
            status: d.status,
            attempts: d.attempts,
            created: d.createdAt,
            finished: d.finishedAt,
            last_error: d.lastError,
          })),
          ['id', 'purpose', 'status', 'attempts', 'created', 'finished', 'last_error'],
        ),
      };
    },
  },
];
