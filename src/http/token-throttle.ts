import type { Context, Next } from 'koa';
import type { Throttle } from '../security/throttle.js';

const tokenPaths = new Set(['/token', '/token/introspection', '/token/revocation']);

/**
 * Guards the token endpoints against client-secret and code guessing: an IP whose requests
 * keep failing (400/401) is refused for a while. Successful requests are never counted.
 */
export function tokenEndpointThrottle(throttle: Throttle) {
  return async function throttleTokenRequests(ctx: Context, next: Next): Promise<void> {
    if (ctx.method !== 'POST' || !tokenPaths.has(ctx.path)) return next();
    await throttle.assertTokenRequestAllowed(ctx.ip);
    await next();
    if (ctx.status === 400 || ctx.status === 401) await throttle.recordTokenFailure(ctx.ip);
  };
}
