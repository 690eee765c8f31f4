import type { Context } from 'koa';
import { checkPassword, type Account } from '../../accounts/store.js';
import { TooManyAttempts } from '../../errors.js';
import { tooManyAttemptsMessage } from '../errors.js';
import { pageTranslator } from '../render.js';
import type { SelfServiceDeps } from '../self-service.js';

/**
 * Asks for the current password again before a sensitive change. Wrong answers count
 * against the same lockout as sign-in, so a stolen account-page session cannot be used to
 * guess the password either. Returns a message to show, or undefined when it matched.
 */
export async function reauthenticate(ctx: Context, deps: SelfServiceDeps, account: Account, password: string): Promise<string | undefined> {
  const t = pageTranslator(ctx);
  try {
    await deps.throttle.assertSignInAllowed(account.email, ctx.ip);
  } catch (error) {
    if (!(error instanceof TooManyAttempts)) throw error;
    ctx.set('retry-after', String(error.retryAfterSeconds));
    ctx.status = 429;
    return tooManyAttemptsMessage(t, error);
  }
  if (password && (await checkPassword(deps.db, account.id, password))) return undefined;
  await deps.throttle.recordSignInFailure(account.email, ctx.ip);
  return t('password.error.current');
}
