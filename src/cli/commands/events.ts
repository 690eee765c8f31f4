import { listEventDeliveries } from '../../events/deliveries.js';
import { nameOfEvent } from '../../events/event-types.js';
import { parseOrThrow } from '../../validation.js';
import type { Command } from '../command.js';
import { describeTable } from '../output.js';
import { deliveryFlags } from './sessions.js';

export const eventCommands: Command[] = [
  {
    name: 'events deliveries',
    usage: 'idp events deliveries [--since <ISO date|24h|7d>] [--status pending|delivered|failed] [--client <client_id>] [--limit <n>]',
    summary: 'security events pushed to services (SSF) and their outcome, newest first',
    options: { since: { type: 'string' }, status: { type: 'string' }, client: { type: 'string' }, limit: { type: 'string' } },
    async run(runtime, values) {
      const query = parseOrThrow(deliveryFlags, {
        since: values['since'],
        status: values['status'],
        client: values['client'],
        limit: values['limit'],
      });
      const deliveries = await listEventDeliveries(runtime.db, { ...query, clientId: query.client });
      return {
        json: deliveries.map((delivery) => ({ ...delivery, event: nameOfEvent(delivery.eventType) ?? 'verification' })),
        text: describeTable(
          deliveries.map((d) => ({
            id: d.id,
            client: d.clientId,
            event: nameOfEvent(d.eventType) ?? 'verification',
            status: d.status,
            attempts: d.attempts,
            created: d.createdAt,
            finished: d.finishedAt,
            last_error: d.lastError,
          })),
          ['id', 'client', 'event', 'status', 'attempts', 'created', 'finished', 'last_error'],
        ),
      };
    },
  },
];
