import { checkPassword, checkSignInPassword, findAccountByEmail, type Account } from '../accounts/store.js';
import { recordAuditEvent, type AuditEvent } from '../audit/log.js';
import type { Database } from '../db/index.js';
import { TooManyAttempts } from '../errors.js';
import type { Throttle } from '../security/throttle.js';
import { describeUserAgent } from '../security/user-agent.js';
import { factorColumns, hasSecondFactor, toFactors, type Factors, type FactorsRow } from '../factors/summary.js';

export type SignInResult =
  /** The password was right; `factors` says whether a second step must follow, and which. */
  | { ok: true; account: Account; factors: Factors }
  | { ok: false; reason: 'missing' }
  /** The password was right, but an administrator disabled the account. */
  | { ok: false; reason: 'disabled' }
  | { ok: false; reason: 'incorrect'; delayMs: number }
  | { ok: false; reason: 'locked'; retryAfterSeconds: number };

interface SignInDeps {
  db: Database;
  throttle: Throttle;
}

/**
 * One password sign-in, for the service sign-in page and the account pages alike: the attempt
 * is counted before argon2 runs (so a burst gets no more guesses than the limit), the check
 * is enumeration-safe (an unknown address costs one verification too), and the audit log
 * notes the outcome with coarse browser facts for the person's sign-in history.
 */
export async function signInWithPassword(
  deps: SignInDeps,
  input: { email: string; password: string; ip: string; userAgent: string | undefined; clientId: string | null },
): Promise<SignInResult> {
  if (!input.email.trim() || !input.password) return { ok: false, reason: 'missing' };
  let attempt;
  try {
    attempt = await deps.throttle.beginSignIn(input.email, input.ip);
  } catch (error) {
    if (!(error instanceof TooManyAttempts)) throw error;
    const target = await findAccountByEmail(deps.db, input.email);
    await recordAuditEvent(deps.db, {
      event: 'sign_in.locked',
      outcome: 'denied',
      accountId: target?.id,
      clientId: input.clientId,
      ip: input.ip,
    });
    return { ok: false, reason: 'locked', retryAfterSeconds: error.retryAfterSeconds };
  }
  // The factors come with the account, in the statement that finds it by its address: a
  // statement fewer per sign-in. They are looked at only after a right password, so the first
  // step answers unknown and known addresses alike.
  const check = await checkSignInPassword<FactorsRow>(deps.db, input.email, input.password, factorColumns('a.id'));
  if (!check.matched) {
    await recordAuditEvent(deps.db, {
      event: 'sign_in',
      outcome: 'failure',
      accountId: check.accountId,
      clientId: input.clientId,
      ip: input.ip,
    });
    const { delayMs } = await attempt.failed();
    return { ok: false, reason: 'incorrect', delayMs };
  }
  await attempt.succeeded();
  if (check.account.disabledAt) {
    await recordAuditEvent(deps.db, {
      event: 'sign_in',
      outcome: 'denied',
      accountId: check.account.id,
      clientId: input.clientId,
      ip: input.ip,
      details: { reason: 'disabled' },
    });
    return { ok: false, reason: 'disabled' };
  }
  // All of them, not only whether there is one: the second step that follows chooses by them.
  const factors = toFactors(check.extra);
  if (!hasSecondFactor(factors)) {
    await recordSignIn(deps.db, {
      accountId: check.account.id,
      clientId: input.clientId,
      ip: input.ip,
      userAgent: input.userAgent,
      amr: ['pwd'],
    });
  }
  return { ok: true, account: check.account, factors };
}

export interface CompletedSignIn {
  accountId: string;
  clientId: string | null;
  ip: string;
  userAgent: string | undefined;
  amr: readonly string[];
}

/** The audit record of a completed sign-in (every step done), with coarse client facts for the person's history. */
export function signInEvent(signIn: CompletedSignIn): AuditEvent {
  const client = describeUserAgent(signIn.userAgent);
  return {
    event: 'sign_in',
    outcome: 'success',
    actor: signIn.accountId,
    clientId: signIn.clientId,
    ip: signIn.ip,
    details: { browser: client.browser, os: client.os, amr: [...signIn.amr] },
  };
}

export async function recordSignIn(db: Database, signIn: CompletedSignIn): Promise<void> {
  await recordAuditEvent(db, signInEvent(signIn));
}

export type ReauthenticationResult =
  { ok: true } | { ok: false; reason: 'incorrect' } | { ok: false; reason: 'locked'; retryAfterSeconds: number };

/**
 * The current password asked again before a sensitive change. Counted like a sign-in under
 * the same limits, so a stolen account-page session cannot be used to guess the password.
 */
export async function reauthenticate(
  deps: SignInDeps,
  input: { account: Account; password: string; ip: string },
): Promise<ReauthenticationResult> {
  let attempt;
  try {
    attempt = await deps.throttle.beginSignIn(input.account.email, input.ip);
  } catch (error) {
    if (!(error instanceof TooManyAttempts)) throw error;
    return { ok: false, reason: 'locked', retryAfterSeconds: error.retryAfterSeconds };
  }
  if (input.password && (await checkPassword(deps.db, input.account.id, input.password))) {
    await attempt.succeeded();
    return { ok: true };
  }
  await recordAuditEvent(deps.db, {
    event: 'sign_in',
    outcome: 'failure',
    accountId: input.account.id,
    ip: input.ip,
    details: { reauthentication: true },
  });
  await attempt.failed();
  return { ok: false, reason: 'incorrect' };
}
