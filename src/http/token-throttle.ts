import type { Context, Next } from 'koa';
import type { providerRoutes } from '../oidc/provider.js';
import type { Throttle } from '../security/throttle.js';

/**
 * Guards the endpoints where services authenticate against client-secret and code guessing:
 * an IP whose requests keep failing (400/401) is refused for a while. Successful requests are
 * never counted. Keyed on the exact route: other spellings of these paths never reach the
 * provider (routing.ts), so the path here is the route that answers.
 */
export function tokenEndpointThrottle(throttle: Throttle, routes: typeof providerRoutes) {
  const tokenPaths = new Set<string>([
    routes.token,
    routes.introspection,
    routes.revocation,
    routes.device_authorization,
    routes.pushed_authorization_request,
    routes.backchannel_authentication,
    routes.registration,
  ]);
  // An IP that passed the shared check within the last second and has not failed since
  // skips the counter read: one statement less on every token request. A failure anywhere
  // is still counted in Postgres at once, and a lock reaches this instance within a second.
  const recentlyClear = new Map<string, number>();
  return async function throttleTokenRequests(ctx: Context, next: Next): Promise<void> {
    if (ctx.method !== 'POST' || !tokenPaths.has(ctx.path)) return next();
    const now = Date.now();
    if ((recentlyClear.get(ctx.ip) ?? 0) <= now - 1000) {
      await throttle.assertTokenRequestAllowed(ctx.ip);
      if (recentlyClear.size > 10_000) recentlyClear.clear();
      recentlyClear.set(ctx.ip, now);
    }
    await next();
    if (ctx.status === 400 || ctx.status === 401) {
      recentlyClear.delete(ctx.ip);
      await throttle.recordTokenFailure(ctx.ip);
    }
  };
}
