import type { Context, Next } from 'koa';
import type { providerRoutes } from '../oidc/provider.js';
import { awaitingIssuedWrites } from '../oidc/issued-writes.js';

/**
 * The token endpoint answers once every token it issued is stored: their writes are awaited
 * together at the end of the request (oidc/issued-writes.ts), and a failed one turns the
 * answer into an error (errors.ts) instead of tokens nobody could present.
 */
export function storeIssuedTokensBeforeAnswer(routes: typeof providerRoutes) {
  return async function awaitIssuedTokenWrites(ctx: Context, next: Next): Promise<void> {
    if (ctx.method !== 'POST' || ctx.path !== routes.token) return next();
    await awaitingIssuedWrites(next);
  };
}
