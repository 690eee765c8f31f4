import type { PublicKeyCredentialRequestOptionsJSON } from '@simplewebauthn/server';
import { findAccountById, type Account } from '../accounts/store.js';
import { recordAuditEvent, recordAuditEvents, type AuditEvent } from '../audit/log.js';
import { TooManyAttempts } from '../errors.js';
import { checkChallenge, issueChallenge, spendChallenge } from '../factors/challenges.js';
import { methodsOf, type AuthenticationMethod } from '../factors/levels.js';
import { accountIdByUserHandle, findPasskey, listPasskeys, recordPasskeyUse } from '../factors/passkeys.js';
import { summariseRecoveryCodes, useRecoveryCode } from '../factors/recovery-codes.js';
import { useTotpCode } from '../factors/totp.js';
import {
  authenticationOptions,
  challengeOf,
  passkeyMethod,
  verifyAuthentication,
  type AuthenticationResponse,
} from '../factors/webauthn.js';
import type { Language } from '../i18n/catalogue.js';
import { mailRequester } from '../security/throttle.js';
import type { WorkflowDeps } from './deps.js';
import { CHALLENGE_SECONDS, challengeBinding, challengeKeys, passkeysOffered, relyingParty, secretKeys } from './factor-context.js';
import { mailPerson } from './mail-person.js';
import { recordSignIn, signInEvent } from './sign-in.js';

/** Why a passkey answer was refused: it did not verify, its challenge had expired, or it was answered already. */
export type PasskeyRefusal = 'invalid' | 'expired' | 'replayed';

/**
 * What the browser needs to ask for a passkey at a door: a fresh challenge bound to it, and
 * for a second step the account's passkeys (for the first step any discoverable one will do).
 */
export async function passkeyRequestOptions(
  deps: WorkflowDeps,
  request: { door: string; account?: Account },
): Promise<PublicKeyCredentialRequestOptionsJSON> {
  const binding = request.account ? challengeBinding.secondStep(request.door, request.account.id) : challengeBinding.signIn(request.door);
  const challenge = issueChallenge(challengeKeys(deps), binding, CHALLENGE_SECONDS);
  const allow = request.account ? await listPasskeys(deps.db, request.account.id) : undefined;
  return authenticationOptions(relyingParty(deps), challenge, allow);
}

/**
 * Verifies a passkey assertion: its challenge is ours, bound to `binding` and unexpired; the
 * credential is registered (to `expectedAccountId` when given, and to the user handle the
 * authenticator returned); the signature, origin, RP id and user verification check out. Only
 * then are the challenge and the signature counter spent, so a replay is refused.
 */
async function checkPasskeyAssertion(
  deps: WorkflowDeps,
  response: AuthenticationResponse,
  binding: string,
  expectedAccountId?: string,
): Promise<{ ok: true; accountId: string; method: AuthenticationMethod } | { ok: false; reason: PasskeyRefusal }> {
  if (!passkeysOffered(deps)) return { ok: false, reason: 'invalid' };
  const challenge = challengeOf(response);
  const expiresAt = challenge ? checkChallenge(challengeKeys(deps), challenge, binding) : undefined;
  if (!challenge || !expiresAt) return { ok: false, reason: 'expired' };
  const passkey = await findPasskey(deps.db, response.id);
  if (!passkey || (expectedAccountId !== undefined && passkey.accountId !== expectedAccountId)) return { ok: false, reason: 'invalid' };
  const userHandle = response.response.userHandle;
  if (userHandle !== undefined && (await accountIdByUserHandle(deps.db, userHandle)) !== passkey.accountId) {
    return { ok: false, reason: 'invalid' };
  }
  const verified = await verifyAuthentication(relyingParty(deps), response, challenge, passkey);
  if (!verified) return { ok: false, reason: 'invalid' };
  if (!(await spendChallenge(deps.db, challenge, expiresAt))) return { ok: false, reason: 'replayed' };
  const counted = await recordPasskeyUse(deps.db, passkey.credentialId, {
    previousCounter: passkey.counter,
    newCounter: verified.newCounter,
    backedUp: verified.backedUp,
  });
  if (!counted) return { ok: false, reason: 'replayed' };
  return { ok: true, accountId: passkey.accountId, method: passkeyMethod(passkey) };
}

export type PasskeySignInResult =
  { ok: true; account: Account; amr: AuthenticationMethod[] } | { ok: false; reason: PasskeyRefusal | 'disabled' };

/**
 * A complete sign-in with a passkey alone (discoverable credential, user verified): no
 * password and no second step. Audited like a password sign-in.
 */
export async function signInWithPasskey(
  deps: WorkflowDeps,
  request: { response: AuthenticationResponse; door: string; clientId: string | null; ip: string; userAgent: string | undefined },
): Promise<PasskeySignInResult> {
  const checked = await checkPasskeyAssertion(deps, request.response, challengeBinding.signIn(request.door));
  const account = checked.ok ? await findAccountById(deps.db, checked.accountId) : undefined;
  if (!checked.ok || !account) {
    await recordAuditEvent(deps.db, {
      event: 'sign_in',
      outcome: 'failure',
      clientId: request.clientId,
      ip: request.ip,
      details: { method: 'passkey', reason: checked.ok ? 'invalid' : checked.reason },
    });
    return { ok: false, reason: checked.ok ? 'invalid' : checked.reason };
  }
  if (account.disabledAt) {
    await recordAuditEvent(deps.db, {
      event: 'sign_in',
      outcome: 'denied',
      accountId: account.id,
      clientId: request.clientId,
      ip: request.ip,
      details: { method: 'passkey', reason: 'disabled' },
    });
    return { ok: false, reason: 'disabled' };
  }
  const amr = methodsOf([checked.method]);
  await recordSignIn(deps.db, { accountId: account.id, clientId: request.clientId, ip: request.ip, userAgent: request.userAgent, amr });
  return { ok: true, account, amr };
}

/** A second-step answer, its shape already checked by the door. */
export type SecondStepAnswer =
  { kind: 'totp'; code: string } | { kind: 'recovery'; code: string } | { kind: 'passkey'; response: AuthenticationResponse };

export type SecondStepResult =
  | { ok: true; method: AuthenticationMethod }
  | { ok: false; reason: 'incorrect' | PasskeyRefusal }
  | { ok: false; reason: 'locked'; retryAfterSeconds: number };

/**
 * The second step of a password sign-in: an authenticator-app code, a recovery code or a
 * passkey of this account. Counted per account and IP before it is checked (a right
 * password never resets the count); a recovery code that works is spent and the person is
 * told by mail.
 */
export async function verifySecondStep(
  deps: WorkflowDeps,
  request: {
    account: Account;
    answer: SecondStepAnswer;
    /** The authenticator app's sealed secret when the caller read it already (null: the account has none). */
    totpSecretEnvelope?: unknown;
    /** The methods of the first step. */
    amr: readonly string[];
    door: string;
    clientId: string | null;
    ip: string;
    userAgent: string | undefined;
    language: Language;
  },
): Promise<SecondStepResult> {
  const { account, answer } = request;
  let attempt;
  try {
    attempt = await deps.throttle.beginSecondStep(account.id, request.ip);
  } catch (error) {
    if (!(error instanceof TooManyAttempts)) throw error;
    await recordAuditEvent(deps.db, {
      event: 'sign_in.second_step',
      outcome: 'denied',
      accountId: account.id,
      clientId: request.clientId,
      ip: request.ip,
    });
    return { ok: false, reason: 'locked', retryAfterSeconds: error.retryAfterSeconds };
  }
  let outcome: { ok: true; method: AuthenticationMethod } | { ok: false; reason: 'incorrect' | PasskeyRefusal };
  switch (answer.kind) {
    case 'totp':
      outcome = (await useTotpCode(deps.db, account.id, answer.code, await secretKeys(deps), request.totpSecretEnvelope))
        ? { ok: true, method: 'otp' }
        : { ok: false, reason: 'incorrect' };
      break;
    case 'recovery':
      outcome = (await useRecoveryCode(deps.db, account.id, answer.code))
        ? { ok: true, method: 'otp' }
        : { ok: false, reason: 'incorrect' };
      break;
    case 'passkey': {
      const checked = await checkPasskeyAssertion(deps, answer.response, challengeBinding.secondStep(request.door, account.id), account.id);
      outcome = checked.ok ? { ok: true, method: checked.method } : checked;
      break;
    }
  }
  const stepEvent: AuditEvent = {
    event: 'sign_in.second_step',
    outcome: outcome.ok ? 'success' : 'failure',
    actor: outcome.ok ? account.id : null,
    accountId: account.id,
    clientId: request.clientId,
    ip: request.ip,
    details: { method: answer.kind },
  };
  if (!outcome.ok) {
    await recordAuditEvent(deps.db, stepEvent);
    await attempt.failed();
    return outcome;
  }
  await attempt.succeeded();
  if (answer.kind === 'recovery') await noticeRecoveryCodeUse(deps, account, request.language, request.ip);
  // The step and the sign-in it completes, in one statement.
  await recordAuditEvents(deps.db, [
    stepEvent,
    signInEvent({
      accountId: account.id,
      clientId: request.clientId,
      ip: request.ip,
      userAgent: request.userAgent,
      amr: methodsOf([...(request.amr as AuthenticationMethod[]), outcome.method]),
    }),
  ]);
  return { ok: true, method: outcome.method };
}

async function noticeRecoveryCodeUse(deps: WorkflowDeps, account: Account, language: Language, ip: string): Promise<void> {
  const { unused } = await summariseRecoveryCodes(deps.db, account.id);
  await recordAuditEvent(deps.db, { event: 'recovery_code.used', outcome: 'success', actor: account.id, ip, details: { unused } });
  await mailPerson(deps, {
    purpose: 'recovery_code_used',
    recipient: { to: account.email, accountId: account.id, language },
    requester: mailRequester.ownSecurityChange(account.id),
    details: { remaining: unused },
  });
}
