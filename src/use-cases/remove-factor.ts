import { getAccount, type Account } from '../accounts/store.js';
import { recordAuditEvent } from '../audit/log.js';
import type { Queryable } from '../db/index.js';
import { deleteAllPasskeys, deletePasskey } from '../factors/passkeys.js';
import { forgetPendingSignIns } from '../factors/pending-sign-ins.js';
import { deleteRecoveryCodes } from '../factors/recovery-codes.js';
import { accountHasSecondFactor } from '../factors/summary.js';
import { deleteTotpFactor } from '../factors/totp.js';
import type { Language } from '../i18n/catalogue.js';
import type { FactorDescription } from '../mail/messages.js';
import { mailRequester } from '../security/throttle.js';
import { auditActor, type Actor, type WorkflowDeps } from './deps.js';
import { signOutEverywhere } from './end-sessions.js';
import { mailPerson } from './mail-person.js';
import { credentialChange, tellConnectedServices } from './tell-services.js';

/** The CAEP credential type of a factor. */
const credentialTypeOf = (factor: FactorDescription) => (factor.kind === 'passkey' ? 'fido2-platform' : 'app');
import { reauthenticate } from './sign-in.js';

export type FactorRemoval =
  | { ok: true }
  | { ok: false; reason: 'not-found' | 'password-needed' | 'password-incorrect' }
  | { ok: false; reason: 'locked'; retryAfterSeconds: number };

/** Rolls the removal back: it would have removed the last second factor without a fresh password. */
class LastFactorNeedsPassword extends Error {}

/**
 * Removes one second factor of the person's own account. Removing the last one (after which
 * a password alone signs in again) needs the current password, checked here; the recovery
 * codes go with it. Decided inside the transaction, so two removals at once cannot each
 * leave the other to be the last. Audited and mailed.
 */
async function removeFactor(
  deps: WorkflowDeps,
  request: { account: Account; password: string; ip: string; language: Language },
  /** Deletes the factor and describes it; undefined when the account has no such factor. */
  remove: (tx: Queryable) => Promise<FactorDescription | undefined>,
): Promise<FactorRemoval> {
  const { account } = request;
  let passwordChecked = false;
  if (request.password) {
    const check = await reauthenticate(deps, { account, password: request.password, ip: request.ip });
    if (!check.ok) return check.reason === 'locked' ? check : { ok: false, reason: 'password-incorrect' };
    passwordChecked = true;
  }
  let outcome: { ok: true; factor: FactorDescription } | { ok: false; reason: 'not-found' };
  try {
    outcome = await deps.db.transaction(async (tx) => {
      const factor = await remove(tx);
      if (!factor) return { ok: false, reason: 'not-found' } as const;
      const remaining = await accountHasSecondFactor(tx, account.id);
      if (!remaining && !passwordChecked) throw new LastFactorNeedsPassword();
      if (!remaining) await deleteRecoveryCodes(tx, account.id);
      await recordAuditEvent(tx, {
        event: 'factor.removed',
        outcome: 'success',
        actor: account.id,
        ip: request.ip,
        details: { kind: factor.kind, last: !remaining },
      });
      await tellConnectedServices(deps, tx, {
        accountId: account.id,
        name: 'credential-change',
        payload: credentialChange(credentialTypeOf(factor), 'delete', { kind: 'self', ip: request.ip }),
      });
      return { ok: true, factor } as const;
    });
  } catch (error) {
    if (error instanceof LastFactorNeedsPassword) return { ok: false, reason: 'password-needed' };
    throw error;
  }
  if (!outcome.ok) return outcome;
  await mailPerson(deps, {
    purpose: 'factor_removed',
    recipient: { to: account.email, accountId: account.id, language: request.language },
    requester: mailRequester.ownSecurityChange(account.id),
    details: { factor: outcome.factor },
  });
  return { ok: true };
}

export function removePasskey(
  deps: WorkflowDeps,
  request: { account: Account; credentialId: string; password: string; ip: string; language: Language },
): Promise<FactorRemoval> {
  return removeFactor(deps, request, async (tx) => {
    const removed = await deletePasskey(tx, request.account.id, request.credentialId);
    return removed && { kind: 'passkey', name: removed.name };
  });
}

export function removeAuthenticatorApp(
  deps: WorkflowDeps,
  request: { account: Account; password: string; ip: string; language: Language },
): Promise<FactorRemoval> {
  return removeFactor(deps, request, async (tx) => ((await deleteTotpFactor(tx, request.account.id)) ? { kind: 'totp' } : undefined));
}

/**
 * For a person who lost every second factor (support, after checking who they are): every
 * passkey, authenticator app and recovery code goes, every session ends (services are
 * told), and the person is mailed. Audited with the administrator as actor.
 */
export async function resetSignInFactors(
  deps: WorkflowDeps,
  request: { accountId: string; actor: Actor; language: Language },
): Promise<{ passkeys: number; authenticatorApp: boolean; recoveryCodes: number }> {
  const account = await getAccount(deps.db, request.accountId);
  const removed = await deps.db.transaction(async (tx) => {
    const summary = {
      passkeys: await deleteAllPasskeys(tx, account.id),
      authenticatorApp: await deleteTotpFactor(tx, account.id),
      recoveryCodes: await deleteRecoveryCodes(tx, account.id),
    };
    await forgetPendingSignIns(tx, account.id);
    for (const type of [summary.passkeys ? 'fido2-platform' : undefined, summary.authenticatorApp ? 'app' : undefined] as const) {
      if (!type) continue;
      await tellConnectedServices(deps, tx, {
        accountId: account.id,
        name: 'credential-change',
        payload: credentialChange(type, 'delete', request.actor),
      });
    }
    await signOutEverywhere(deps, tx, account.id);
    await recordAuditEvent(tx, { event: 'factors.reset', outcome: 'success', ...auditActor(request.actor, account.id), details: summary });
    return summary;
  });
  await mailPerson(deps, {
    purpose: 'factors_reset',
    recipient: { to: account.email, accountId: account.id, language: request.language },
    requester: request.actor.kind === 'admin' ? mailRequester.admin() : mailRequester.owner(account.id),
  });
  return removed;
}
