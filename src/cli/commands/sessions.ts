import { z } from 'zod';
import { getAccount } from '../../accounts/store.js';
import { listLogoutDeliveries } from '../../logout/deliveries.js';
import { listSessions } from '../../oidc/artefacts.js';
import { endAllSessions, endSession } from '../../use-cases/end-sessions.js';
import { parseOrThrow } from '../../validation.js';
import type { Command } from '../command.js';
import { UsageError, describeTable } from '../output.js';
import { sinceSchema } from './audit.js';

export const deliveryFlags = z.object({
  since: sinceSchema,
  status: z.enum(['pending', 'delivered', 'failed'], { message: 'must be pending, delivered or failed' }).optional(),
  client: z.string().min(1).optional(),
  limit: z.coerce.number().int().min(1).max(10000).default(200),
});

export const sessionCommands: Command[] = [
  {
    name: 'sessions list',
    usage: 'idp sessions list --account <id|email>',
    summary: "an account's live sessions and the services each signed in to",
    options: { account: { type: 'string' } },
    async run(runtime, values) {
      if (typeof values['account'] !== 'string') throw new UsageError('--account <id|email> is required');
      const account = await getAccount(runtime.db, values['account']);
      const sessions = await listSessions(runtime.db, account.id);
      return {
        json: sessions,
        text: describeTable(
          sessions.map((s) => ({ uid: s.uid, signed_in: s.signedInAt, expires: s.expiresAt, services: s.services.map((x) => x.clientId) })),
          ['uid', 'signed_in', 'expires', 'services'],
        ),
      };
    },
  },
  {
    name: 'sessions revoke',
    usage: 'idp sessions revoke <session uid>',
    summary: 'end a session and send back-channel logout to its services',
    options: {},
    positionals: ['uid'],
    async run(runtime, _values, [uid]) {
      const session = await endSession(await runtime.workflowDeps(), { uid: uid!, actor: { kind: 'admin' } });
      return {
        json: { uid: session.uid, revoked: true, notified: session.services.map((s) => s.clientId) },
        text: `revoked session ${session.uid}; back-channel logout queued for ${session.services.length} service(s)`,
      };
    },
  },
  {
    name: 'sessions revoke-all',
    usage: 'idp sessions revoke-all --account <id|email>',
    summary: 'end every sign-in session of an account (sign out everywhere) and tell its services',
    options: { account: { type: 'string' } },
    async run(runtime, values) {
      if (typeof values['account'] !== 'string') throw new UsageError('--account <id|email> is required');
      const account = await getAccount(runtime.db, values['account']);
      const { notified } = await endAllSessions(await runtime.workflowDeps(), { accountId: account.id, actor: { kind: 'admin' } });
      return {
        json: { id: account.id, revoked: true, notified },
        text: `ended every session of ${account.email}; back-channel logout queued for ${notified.length} service(s)`,
      };
    },
  },
  {
    name: 'logout-deliveries',
    usage: 'idp logout-deliveries [--since <ISO date|24h|7d>] [--status pending|delivered|failed] [--client <client_id>] [--limit <n>]',
    summary: 'back-channel logout deliveries and their outcome, newest first',
    options: { since: { type: 'string' }, status: { type: 'string' }, client: { type: 'string' }, limit: { type: 'string' } },
    async run(runtime, values) {
      const query = parseOrThrow(deliveryFlags, {
        since: values['since'],
        status: values['status'],
        client: values['client'],
        limit: values['limit'],
      });
      const deliveries = await listLogoutDeliveries(runtime.db, { ...query, clientId: query.client });
      return {
        json: deliveries,
        text: describeTable(
          deliveries.map((d) => ({
            id: d.id,
            client: d.clientId,
            reason: d.reason,
            status: d.status,
            attempts: d.attempts,
            created: d.createdAt,
            finished: d.finishedAt,
            last_error: d.lastError,
          })),
          ['id', 'client', 'reason', 'status', 'attempts', 'created', 'finished', 'last_error'],
        ),
      };
    },
  },
];
