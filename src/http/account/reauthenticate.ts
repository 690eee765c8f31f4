import type { Context } from 'koa';
import type { Account } from '../../accounts/store.js';
import { TooManyAttempts } from '../../errors.js';
import { reauthenticate as checkCurrentPassword } from '../../use-cases/sign-in.js';
import { tooManyAttemptsMessage } from '../errors.js';
import { pageTranslator } from '../render.js';
import type { SelfServiceDeps } from '../self-service.js';

/**
 * Asks for the current password again before a sensitive change (counted like a sign-in).
 * Returns a message to show, or undefined when it matched; a lock also sets 429 and Retry-After.
 */
export async function reauthenticate(ctx: Context, deps: SelfServiceDeps, account: Account, password: string): Promise<string | undefined> {
  const t = pageTranslator(ctx);
  const result = await checkCurrentPassword(deps, { account, password, ip: ctx.ip });
  if (result.ok) return undefined;
  if (result.reason === 'locked') {
    ctx.set('retry-after', String(result.retryAfterSeconds));
    ctx.status = 429;
    return tooManyAttemptsMessage(t, new TooManyAttempts(result.retryAfterSeconds));
  }
  return t('password.error.current');
}
