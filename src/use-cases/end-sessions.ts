import { endOtherAccountSessions } from '../accounts/account-sessions.js';
import { recordAuditEvent } from '../audit/log.js';
import type { Queryable } from '../db/index.js';
import { NotFound } from '../errors.js';
import { enqueueLogoutDelivery } from '../logout/deliveries.js';
import { forgetSessionDevice } from '../accounts/session-devices.js';
import {
  deleteSessionByUid,
  deleteSessions,
  deleteSignInState,
  listSessions,
  sessionClientIds,
  type StoredSession,
} from '../oidc/artefacts.js';
import { notifyLogout } from '../oidc/logout-notices.js';
import { eventTimestamp } from '../oidc/account-events.js';
import { auditActor, type Actor, type WorkflowDeps } from './deps.js';
import { initiatingEntity, tellConnectedServices } from './tell-services.js';

/** CAEP session-revoked payload: who ended the session, and when. */
const sessionRevoked = (actor: Actor) => ({ initiating_entity: initiatingEntity(actor), event_timestamp: eventTimestamp() });

/**
 * Signs an account out everywhere, inside the caller's transaction: its services are told
 * (before the sessions they name go), every sign-in session, interaction in progress, code
 * and token goes, and so does every account-page session but `keepAccountSession`. Grants
 * stay: services ask for a sign-in, not for consent again. For password changes, resets and a
 * restored address.
 */
export async function signOutEverywhere(
  deps: Pick<WorkflowDeps, 'provider' | 'config'>,
  tx: Queryable,
  accountId: string,
  keepAccountSession?: string,
): Promise<void> {
  const clientIds = await sessionClientIds(tx, accountId);
  await notifyLogout({ db: tx, provider: deps.provider }, { accountId, clientIds, reason: 'session_ended' });
  await tellConnectedServices(deps, tx, { accountId, name: 'session-revoked', clientIds, payload: { event_timestamp: eventTimestamp() } });
  await deleteSignInState(tx, accountId);
  await endOtherAccountSessions(tx, accountId, keepAccountSession);
}

/** Queues a logout token for each service the ended session signed in to, naming that session (sid); forgets its device. */
async function announceEndedSession(issuer: string, tx: Queryable, ended: StoredSession): Promise<void> {
  for (const service of ended.services) {
    await enqueueLogoutDelivery(tx, {
      issuer,
      clientId: service.clientId,
      accountId: ended.accountId,
      sid: service.sid || null,
      reason: 'session_revoked',
    });
  }
  await forgetSessionDevice(tx, ended.uid);
}

/**
 * Ends one sign-in session by its handle (support staff; the person, from the Security page): its cookie stops working and every
 * service it signed in to gets a back-channel logout, in one transaction. With `accountId`,
 * only a session of that account.
 */
export async function endSession(deps: WorkflowDeps, request: { uid: string; actor: Actor; accountId?: string }): Promise<StoredSession> {
  return deps.db.transaction(async (tx) => {
    const ended = await deleteSessionByUid(tx, request.uid);
    if (!ended || (request.accountId !== undefined && ended.accountId !== request.accountId)) {
      throw new NotFound(`no session with uid ${request.uid}`);
    }
    await announceEndedSession(deps.provider.issuer, tx, ended);
    await tellConnectedServices(deps, tx, {
      accountId: ended.accountId,
      name: 'session-revoked',
      clientIds: ended.services.map((service) => service.clientId),
      payload: sessionRevoked(request.actor),
    });
    await recordAuditEvent(tx, {
      event: 'sessions.ended',
      outcome: 'success',
      ...auditActor(request.actor, ended.accountId),
      details: { sessions: 1 },
    });
    return ended;
  });
}

/**
 * "Sign out everywhere else", from the Security page: every sign-in session of the account
 * but the browser's own (`keepSessionUid`) and every account-page session but this one end,
 * in one transaction; each service of an ended session gets a logout token for it.
 */
export async function endOtherSessions(
  deps: WorkflowDeps,
  request: { accountId: string; actor: Actor; keepSessionUid: string | undefined; keepAccountSession: string },
): Promise<{ ended: number }> {
  return deps.db.transaction(async (tx) => {
    let ended = 0;
    const services = new Set<string>();
    for (const session of await listSessions(tx, request.accountId)) {
      if (session.uid === request.keepSessionUid) continue;
      const gone = await deleteSessionByUid(tx, session.uid);
      if (!gone) continue;
      await announceEndedSession(deps.provider.issuer, tx, gone);
      for (const service of gone.services) services.add(service.clientId);
      ended += 1;
    }
    await tellConnectedServices(deps, tx, {
      accountId: request.accountId,
      name: 'session-revoked',
      clientIds: [...services],
      payload: sessionRevoked(request.actor),
    });
    await endOtherAccountSessions(tx, request.accountId, request.keepAccountSession);
    await recordAuditEvent(tx, {
      event: 'sessions.ended',
      outcome: 'success',
      ...auditActor(request.actor, request.accountId),
      details: { sessions: ended, keptThisBrowser: request.keepSessionUid !== undefined },
    });
    return { ended };
  });
}

/**
 * Ends every sign-in session of an account ("sign out everywhere"): each service with a
 * session is told, and the sessions go. Tokens stay with the services that hold them
 * (disconnecting a service revokes those). `keepAccountSession` keeps the account page that
 * asked signed in while every other account-page session ends.
 */
export async function endAllSessions(
  deps: WorkflowDeps,
  request: { accountId: string; actor: Actor; keepAccountSession?: string },
): Promise<{ notified: string[] }> {
  return deps.db.transaction(async (tx) => {
    const clientIds = await sessionClientIds(tx, request.accountId);
    await notifyLogout({ db: tx, provider: deps.provider }, { accountId: request.accountId, clientIds, reason: 'session_ended' });
    await tellConnectedServices(deps, tx, {
      accountId: request.accountId,
      name: 'session-revoked',
      clientIds,
      payload: sessionRevoked(request.actor),
    });
    await deleteSessions(tx, request.accountId);
    await endOtherAccountSessions(tx, request.accountId, request.keepAccountSession);
    await recordAuditEvent(tx, {
      event: 'sessions.ended',
      outcome: 'success',
      ...auditActor(request.actor, request.accountId),
      details: { services: clientIds.length },
    });
    return { notified: clientIds };
  });
}
