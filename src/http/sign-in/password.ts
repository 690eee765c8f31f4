import { setTimeout as sleep } from 'node:timers/promises';
import type { Context } from 'koa';
import type { Account } from '../../accounts/store.js';
import type { Factors } from '../../factors/summary.js';
import { TooManyAttempts } from '../../errors.js';
import { signInWithPassword } from '../../use-cases/sign-in.js';
import { tooManyAttemptsMessage } from '../errors.js';
import { signInCounter } from '../metrics.js';
import { pageTranslator } from '../render.js';
import type { SelfServiceDeps } from '../self-service.js';

export type SignInOutcome =
  /** `factors`: the account's, read once the password was right. */
  { ok: true; account: Account; factors: Factors } | { ok: false; status: 400 | 401 | 403 | 429; message: string };

/**
 * A password sign-in from a page (the service sign-in page and the account pages): runs the
 * sign-in workflow and turns its result into what the page shows, with metrics and the
 * progressive delay after repeated failures.
 */
export async function signInFromPage(
  ctx: Context,
  deps: SelfServiceDeps,
  input: { email: string; password: string; clientId: string | null },
): Promise<SignInOutcome> {
  const t = pageTranslator(ctx);
  const result = await signInWithPassword(deps, { ...input, ip: ctx.ip, userAgent: ctx.get('user-agent') || undefined });
  if (result.ok) {
    signInCounter.inc({ outcome: 'success' });
    return result;
  }
  switch (result.reason) {
    case 'missing':
      return { ok: false, status: 400, message: t('login.error.missing') };
    case 'disabled':
      signInCounter.inc({ outcome: 'disabled' });
      return { ok: false, status: 403, message: t('login.error.disabled') };
    case 'locked':
      signInCounter.inc({ outcome: 'locked' });
      ctx.set('retry-after', String(result.retryAfterSeconds));
      return { ok: false, status: 429, message: tooManyAttemptsMessage(t, new TooManyAttempts(result.retryAfterSeconds)) };
    case 'incorrect':
      signInCounter.inc({ outcome: 'failure' });
      await sleep(result.delayMs);
      return { ok: false, status: 401, message: t('login.error.incorrect') };
  }
}
