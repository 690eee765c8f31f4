import type { Context, Next } from 'koa';
import type { providerRoutes } from '../oidc/provider.js';
import { formParser } from './forms.js';

const formBody = formParser('32kb');

// Browsers and servers cut URLs somewhere above 8 KB; a longer request belongs in a pushed authorization request.
const MAX_QUERY_BYTES = 8000;

/**
 * OIDC Core §3.1.2.1 and RP-Initiated Logout §2: the authorization and end-session
 * endpoints MUST accept POST. Sign-in cookies are SameSite=Lax, so a service's cross-site
 * form POST arrives without them and could not reuse the person's session. The POST is
 * answered with 303 to the same endpoint carrying the same parameters as a query: the
 * browser's top-level GET brings the cookies, and oidc-provider handles it as any GET.
 */
export function acceptPostedRequests(routes: typeof providerRoutes) {
  const paths = new Set<string>([routes.authorization, routes.end_session]);
  return async function redirectPostToGet(ctx: Context, next: Next): Promise<void> {
    if (ctx.method !== 'POST' || !paths.has(ctx.path)) return next();
    if (!ctx.is('application/x-www-form-urlencoded')) {
      ctx.status = 400;
      ctx.body = { error: 'invalid_request', error_description: 'a POST to this endpoint must be application/x-www-form-urlencoded' };
      return;
    }
    await formBody(ctx, async () => undefined);
    const fields = (ctx.request.body ?? {}) as Record<string, unknown>;
    const query = new URLSearchParams();
    for (const [name, value] of Object.entries(fields)) {
      for (const item of Array.isArray(value) ? value : [value]) if (typeof item === 'string') query.append(name, item);
    }
    const search = query.toString();
    if (Buffer.byteLength(search) > MAX_QUERY_BYTES) {
      ctx.status = 413;
      ctx.body = { error: 'invalid_request', error_description: 'request too large; use a pushed authorization request' };
      return;
    }
    ctx.status = 303;
    ctx.set('cache-control', 'no-store');
    ctx.redirect(search ? `${ctx.path}?${search}` : ctx.path);
  };
}
