import type { Context, Next } from 'koa';
import type Provider from 'oidc-provider';
import type { providerRoutes } from '../oidc/provider.js';
import type { Throttle } from '../security/throttle.js';
import { CsrfFailure } from './csrf.js';
import { USER_CODE_MISS } from './pages.js';

/**
 * What stands before oidc-provider's device code form (POST /device) and its resumption
 * (/device/:uid):
 * - the form is only valid from a browser that opened it: without the session cookie that
 *   holds its CSRF secret it is an expired form (oidc-provider would fail saving a session
 *   it never created, a 500), and a resumption needs that session stored;
 * - guessing user codes is limited per IP: a code that matches no device counts (pages.ts
 *   marks the request), and past USER_CODE_FAILURES_PER_IP the IP gets 429 before its code is
 *   looked at, for LOGIN_LOCK_SECONDS.
 */
export function deviceCodeForm(
  provider: Provider,
  throttle: Throttle,
  routes: typeof providerRoutes,
  sessionExists: (cookieValue: string) => Promise<boolean>,
) {
  const sessionCookie = provider.cookieName('session');
  const resume = `${routes.code_verification}/`;
  return async function guardDeviceCodeForm(ctx: Context, next: Next): Promise<void> {
    // Resuming a device sign-in is only possible in the browser that started it, whose session
    // is stored (a resumption under a session that never was would fail saving it). A GET or
    // HEAD of the device authorization endpoint is routed as a resumption too (uid "auth").
    const resuming = ctx.path.startsWith(resume) && !(ctx.path === routes.device_authorization && ctx.method === 'POST');
    if (resuming) {
      const session = ctx.cookies.get(sessionCookie, { signed: true });
      if (!session || !(await sessionExists(session))) throw new CsrfFailure('no device sign-in in progress in this browser');
    }
    if (ctx.method !== 'POST' || ctx.path !== routes.code_verification) return next();
    if (!ctx.cookies.get(sessionCookie)) throw new CsrfFailure('the device code form was not opened in this browser');
    await throttle.assertUserCodeGuessAllowed(ctx.ip);
    await next();
    if (ctx.state[USER_CODE_MISS]) await throttle.recordUserCodeMiss(ctx.ip);
  };
}
