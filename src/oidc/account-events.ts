import type Provider from 'oidc-provider';
import type { Queryable } from '../db/index.js';
import { enqueueEvent, newTxn } from '../events/deliveries.js';
import { eventTypes, type EventName } from '../events/event-types.js';
import { streamsWanting } from '../events/streams.js';
import { subjectForClient } from './internals.js';

/**
 * Queues a Security Event Token about an account for each of these services that subscribed
 * to the event (an enabled stream that requested it), in the caller's transaction, each with
 * the subject as that service knows the person (its own, possibly pairwise, `sub`): nothing
 * lets two services correlate a person. Returns the services told.
 */
export async function announceAccountEvent(
  deps: { db: Queryable; provider: Provider; issuer: string },
  event: { accountId: string; name: EventName; clientIds: readonly string[]; payload?: Record<string, unknown>; txn?: string },
): Promise<string[]> {
  const uri = eventTypes[event.name];
  const streams = await streamsWanting(deps.db, [...new Set(event.clientIds)], uri);
  const txn = event.txn ?? newTxn();
  const told: string[] = [];
  for (const stream of streams) {
    const client = await deps.provider.Client.find(stream.clientId);
    if (!client) continue;
    const sub = await subjectForClient(deps.provider, client, event.accountId);
    await enqueueEvent(deps.db, {
      clientId: stream.clientId,
      issuer: deps.issuer,
      accountId: event.accountId,
      eventType: uri,
      subject: { format: 'iss_sub', iss: deps.issuer, sub },
      payload: event.payload ?? {},
      txn,
    });
    told.push(stream.clientId);
  }
  return told;
}

/** CAEP events carry when they happened (seconds since the epoch). */
export const eventTimestamp = () => Math.floor(Date.now() / 1000);
