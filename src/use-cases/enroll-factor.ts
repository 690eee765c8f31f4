import type { PublicKeyCredentialCreationOptionsJSON } from '@simplewebauthn/server';
import type { Account } from '../accounts/store.js';
import { recordAuditEvent } from '../audit/log.js';
import type { Queryable } from '../db/index.js';
import { TooManyAttempts } from '../errors.js';
import { checkChallenge, issueChallenge, spendChallenge } from '../factors/challenges.js';
import { insertPasskey, listPasskeys, renamePasskey, webauthnUserId } from '../factors/passkeys.js';
import { replaceRecoveryCodes } from '../factors/recovery-codes.js';
import { accountHasSecondFactor } from '../factors/summary.js';
import { confirmEnrolment, enrolmentSecret, findTotpFactor, matchingStep, pendingEnrolmentSecret, totpUri } from '../factors/totp.js';
import type { AuthenticationMethod } from '../factors/levels.js';
import { challengeOf, passkeyMethod, registrationOptions, verifyRegistration, type RegistrationResponse } from '../factors/webauthn.js';
import type { Language } from '../i18n/catalogue.js';
import type { FactorDescription } from '../mail/messages.js';
import { mailRequester } from '../security/throttle.js';
import type { WorkflowDeps } from './deps.js';
import { CHALLENGE_SECONDS, challengeBinding, challengeKeys, passkeysOffered, relyingParty, secretKeys } from './factor-context.js';
import { mailPerson } from './mail-person.js';
import { credentialChange, tellConnectedServices } from './tell-services.js';

/**
 * Adding a sign-in factor: a passkey or an authenticator app. The first one an account gets
 * comes with ten recovery codes, returned to be shown once. Each addition is audited and
 * mailed to the person. The doors have already established who is asking (a signed-in
 * account page, or a sign-in that just passed its password step).
 */
export interface Enrolled {
  /** Present when this was the account's first second factor: show them now, they are not kept in clear. */
  recoveryCodes?: string[];
}

interface EnrolmentRequest {
  account: Account;
  ip: string;
  language: Language;
}

/** Recovery codes for an account getting its first second factor (inside the enrolment's transaction). */
async function recoveryCodesForFirstFactor(tx: Queryable, accountId: string, hadSecondFactor: boolean): Promise<string[] | undefined> {
  if (hadSecondFactor) return undefined;
  const codes = await replaceRecoveryCodes(tx, accountId);
  await recordAuditEvent(tx, { event: 'recovery_codes.issued', outcome: 'success', actor: accountId, details: { count: codes.length } });
  return codes;
}

async function noticeFactorAdded(deps: WorkflowDeps, request: EnrolmentRequest, factor: FactorDescription): Promise<void> {
  await mailPerson(deps, {
    purpose: 'factor_added',
    recipient: { to: request.account.email, accountId: request.account.id, language: request.language },
    requester: mailRequester.ownSecurityChange(request.account.id),
    details: { factor },
  });
}

/** What the browser needs to create a passkey for this account (its user handle, a challenge bound to the account). */
export async function passkeyCreationOptions(deps: WorkflowDeps, account: Account): Promise<PublicKeyCredentialCreationOptionsJSON> {
  const handle = await webauthnUserId(deps.db, account.id);
  const challenge = issueChallenge(challengeKeys(deps), challengeBinding.registration(account.id), CHALLENGE_SECONDS);
  return registrationOptions(
    relyingParty(deps),
    { handle, name: account.email, displayName: account.name ?? account.email },
    challenge,
    await listPasskeys(deps.db, account.id),
  );
}

export type PasskeyEnrolment =
  ({ ok: true; method: AuthenticationMethod } & Enrolled) | { ok: false; reason: 'invalid' | 'expired' | 'replayed' | 'duplicate' };

/**
 * Stores a new passkey once its registration verifies: a challenge we issued for this account
 * and not yet answered, our origin and RP id, user verification, a well-formed attestation.
 * Anything else changes nothing.
 */
export async function addPasskey(
  deps: WorkflowDeps,
  request: EnrolmentRequest & { response: RegistrationResponse; name: string },
): Promise<PasskeyEnrolment> {
  const { account } = request;
  if (!passkeysOffered(deps)) return { ok: false, reason: 'invalid' };
  const challenge = challengeOf(request.response);
  const expiresAt = challenge ? checkChallenge(challengeKeys(deps), challenge, challengeBinding.registration(account.id)) : undefined;
  if (!challenge || !expiresAt) return { ok: false, reason: 'expired' };
  const passkey = await verifyRegistration(relyingParty(deps), request.response, challenge, request.name);
  if (!passkey) return { ok: false, reason: 'invalid' };
  const outcome = await deps.db.transaction(async (tx): Promise<PasskeyEnrolment> => {
    if (!(await spendChallenge(tx, challenge, expiresAt))) return { ok: false, reason: 'replayed' };
    const hadSecondFactor = await accountHasSecondFactor(tx, account.id);
    if (!(await insertPasskey(tx, account.id, passkey))) return { ok: false, reason: 'duplicate' };
    await recordAuditEvent(tx, {
      event: 'factor.added',
      outcome: 'success',
      actor: account.id,
      ip: request.ip,
      details: { kind: 'passkey', deviceType: passkey.deviceType },
    });
    await tellConnectedServices(deps, tx, {
      accountId: account.id,
      name: 'credential-change',
      payload: credentialChange('fido2-platform', 'create', { kind: 'self', ip: request.ip }),
    });
    const recoveryCodes = await recoveryCodesForFirstFactor(tx, account.id, hadSecondFactor);
    return { ok: true, method: passkeyMethod(passkey), ...(recoveryCodes ? { recoveryCodes } : {}) };
  });
  if (outcome.ok) await noticeFactorAdded(deps, request, { kind: 'passkey', name: passkey.name });
  return outcome;
}

/** The secret of the authenticator app being set up, and the otpauth:// URI its QR code carries. */
export async function authenticatorAppSetup(deps: WorkflowDeps, account: Account): Promise<{ secret: string; uri: string }> {
  const secret = await enrolmentSecret(deps.db, account.id, await secretKeys(deps));
  return { secret, uri: totpUri(secret, { label: account.email, issuer: relyingParty(deps).name }) };
}

export type AuthenticatorAppEnrolment =
  | ({ ok: true } & Enrolled)
  | { ok: false; reason: 'incorrect' | 'expired' | 'exists' }
  | { ok: false; reason: 'locked'; retryAfterSeconds: number };

/**
 * Confirms the authenticator app being set up with a current code from it (counted like a
 * second-step answer), which makes it the account's app. The confirming code is spent.
 */
export async function confirmAuthenticatorApp(
  deps: WorkflowDeps,
  request: EnrolmentRequest & { code: string },
): Promise<AuthenticatorAppEnrolment> {
  const { account } = request;
  if (await findTotpFactor(deps.db, account.id)) return { ok: false, reason: 'exists' };
  const keys = await secretKeys(deps);
  const secret = await pendingEnrolmentSecret(deps.db, account.id, keys);
  if (!secret) return { ok: false, reason: 'expired' };
  let attempt;
  try {
    attempt = await deps.throttle.beginSecondStep(account.id, request.ip);
  } catch (error) {
    if (!(error instanceof TooManyAttempts)) throw error;
    return { ok: false, reason: 'locked', retryAfterSeconds: error.retryAfterSeconds };
  }
  const step = matchingStep(secret, request.code);
  if (step === undefined) {
    await attempt.failed();
    return { ok: false, reason: 'incorrect' };
  }
  await attempt.succeeded();
  const outcome = await deps.db.transaction(async (tx): Promise<AuthenticatorAppEnrolment> => {
    const hadSecondFactor = await accountHasSecondFactor(tx, account.id);
    if (!(await confirmEnrolment(tx, account.id, secret, step, keys))) return { ok: false, reason: 'exists' };
    await recordAuditEvent(tx, { event: 'factor.added', outcome: 'success', actor: account.id, ip: request.ip, details: { kind: 'totp' } });
    await tellConnectedServices(deps, tx, {
      accountId: account.id,
      name: 'credential-change',
      payload: credentialChange('app', 'create', { kind: 'self', ip: request.ip }),
    });
    const recoveryCodes = await recoveryCodesForFirstFactor(tx, account.id, hadSecondFactor);
    return { ok: true, ...(recoveryCodes ? { recoveryCodes } : {}) };
  });
  if (outcome.ok) await noticeFactorAdded(deps, request, { kind: 'totp' });
  return outcome;
}

/** Ten new recovery codes; every earlier one stops working. Needs a second factor to recover. */
export async function regenerateRecoveryCodes(deps: WorkflowDeps, request: EnrolmentRequest): Promise<string[] | undefined> {
  const { account } = request;
  const codes = await deps.db.transaction(async (tx) => {
    if (!(await accountHasSecondFactor(tx, account.id))) return undefined;
    const fresh = await replaceRecoveryCodes(tx, account.id);
    await recordAuditEvent(tx, {
      event: 'recovery_codes.issued',
      outcome: 'success',
      actor: account.id,
      ip: request.ip,
      details: { count: fresh.length },
    });
    return fresh;
  });
  if (codes) {
    await mailPerson(deps, {
      purpose: 'recovery_codes_regenerated',
      recipient: { to: account.email, accountId: account.id, language: request.language },
      requester: mailRequester.ownSecurityChange(account.id),
    });
  }
  return codes;
}

/** Renames one of the account's passkeys; false when it has none of that id. */
export async function renameOwnPasskey(
  deps: WorkflowDeps,
  request: { account: Account; credentialId: string; name: string; ip: string },
): Promise<boolean> {
  const renamed = await renamePasskey(deps.db, request.account.id, request.credentialId, request.name);
  if (renamed) await recordAuditEvent(deps.db, { event: 'factor.renamed', outcome: 'success', actor: request.account.id, ip: request.ip });
  return renamed;
}
