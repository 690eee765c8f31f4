import { setTimeout as sleep } from 'node:timers/promises';
import type { Context } from 'koa';
import { authenticate, type Account } from '../accounts/store.js';
import { recordAuditEvent } from '../audit/log.js';
import type { Database } from '../db/index.js';
import { TooManyAttempts } from '../errors.js';
import type { Throttle } from '../security/throttle.js';
import { describeUserAgent } from '../security/user-agent.js';
import { tooManyAttemptsMessage } from './errors.js';
import { signInCounter } from './metrics.js';
import { pageTranslator } from './render.js';

export type SignInOutcome = { ok: true; account: Account } | { ok: false; status: 400 | 401 | 429; message: string };

/**
 * One password sign-in attempt, shared by the service sign-in page and the account pages:
 * lockout check, enumeration-safe verification, progressive delay on failure, metrics, and
 * an audit event that notes the browser family and system (for the sign-in history).
 */
export async function signInWithPassword(
  ctx: Context,
  deps: { db: Database; throttle: Throttle },
  input: { email: string; password: string; clientId: string | null },
): Promise<SignInOutcome> {
  const t = pageTranslator(ctx);
  if (!input.email.trim() || !input.password) return { ok: false, status: 400, message: t('login.error.missing') };
  try {
    await deps.throttle.assertSignInAllowed(input.email, ctx.ip);
  } catch (error) {
    if (!(error instanceof TooManyAttempts)) throw error;
    signInCounter.inc({ outcome: 'locked' });
    await recordAuditEvent(deps.db, { event: 'sign_in.locked', outcome: 'denied', clientId: input.clientId, ip: ctx.ip });
    ctx.set('retry-after', String(error.retryAfterSeconds));
    return { ok: false, status: 429, message: tooManyAttemptsMessage(t, error) };
  }
  const account = await authenticate(deps.db, input.email, input.password);
  if (!account) {
    signInCounter.inc({ outcome: 'failure' });
    await recordAuditEvent(deps.db, { event: 'sign_in', outcome: 'failure', clientId: input.clientId, ip: ctx.ip });
    const { delayMs } = await deps.throttle.recordSignInFailure(input.email, ctx.ip);
    await sleep(delayMs);
    return { ok: false, status: 401, message: t('login.error.incorrect') };
  }
  await deps.throttle.recordSignInSuccess(input.email);
  signInCounter.inc({ outcome: 'success' });
  await recordSignIn(ctx, deps.db, account.id, input.clientId);
  return { ok: true, account };
}

/** The audit record of a successful sign-in, with coarse client facts for the person's history. */
export async function recordSignIn(ctx: Context, db: Database, accountId: string, clientId: string | null): Promise<void> {
  const client = describeUserAgent(ctx.get('user-agent'));
  await recordAuditEvent(db, {
    event: 'sign_in',
    outcome: 'success',
    actor: accountId,
    clientId,
    ip: ctx.ip,
    details: { browser: client.browser, os: client.os },
  });
}
