import type { Queryable } from '../db/index.js';
import type { EventName } from '../events/event-types.js';
import { announceAccountEvent, eventTimestamp } from '../oidc/account-events.js';
import { connectedClientIds, listGrantedServices } from '../oidc/artefacts.js';
import type { Actor, WorkflowDeps } from './deps.js';

/**
 * Tells the services connected to an account (a grant or a session) of a change, by the
 * event streams they subscribed (SSF), in the caller's transaction. Returns the services told.
 */
export async function tellConnectedServices(
  deps: Pick<WorkflowDeps, 'provider' | 'config'>,
  tx: Queryable,
  event: { accountId: string; name: EventName; payload?: Record<string, unknown>; clientIds?: readonly string[]; txn?: string },
): Promise<string[]> {
  const clientIds = event.clientIds ?? (await connectedClientIds(tx, event.accountId));
  return announceAccountEvent({ db: tx, provider: deps.provider, issuer: deps.config.issuer }, { ...event, clientIds });
}

/** The services that hold the person's email address: only they hear that it changed. */
export async function servicesGivenTheEmail(tx: Queryable, accountId: string): Promise<string[]> {
  return (await listGrantedServices(tx, accountId))
    .filter((service) => service.scopes.includes('email'))
    .map((service) => service.clientId);
}

/** CAEP's initiating_entity for who made a change. */
export const initiatingEntity = (actor: Actor) => (actor.kind === 'self' ? 'user' : 'admin');

/** CAEP credential-change payload. */
export function credentialChange(
  credentialType: 'password' | 'fido2-platform' | 'app',
  changeType: 'create' | 'update' | 'delete',
  actor: Actor,
): Record<string, unknown> {
  return {
    credential_type: credentialType,
    change_type: changeType,
    initiating_entity: initiatingEntity(actor),
    event_timestamp: eventTimestamp(),
  };
}
