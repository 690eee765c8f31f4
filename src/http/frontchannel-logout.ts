import type { Context, Next } from 'koa';
import type Provider from 'oidc-provider';
import type { Database } from '../db/index.js';
import { sessionAuthorizationsByCookie } from '../oidc/artefacts.js';
import { providerRoutes } from '../oidc/provider.js';
import { renderPage } from './render.js';

/**
 * OpenID Connect Front-Channel Logout 1.0, which oidc-provider 9 no longer implements: after
 * the logout confirmation, services that registered a `frontchannel_logout_uri` and lost
 * their place in the session are loaded in hidden iframes (with iss and sid), then the page
 * continues to where oidc-provider was going (meta refresh and a link: no script needed).
 */
export function frontChannelLogout(provider: Provider, db: Database, issuer: string) {
  const confirmPath = `${providerRoutes.end_session}/confirm`;
  return async function renderFrontChannelLogout(ctx: Context, next: Next): Promise<void> {
    if (ctx.method !== 'POST' || ctx.path !== confirmPath) return next();
    const sessionId = ctx.cookies.get(provider.cookieName('session'), { signed: true });
    const before = sessionId ? await sessionAuthorizationsByCookie(db, sessionId) : undefined;
    await next();
    if (!sessionId || !before || ctx.status >= 400) return;
    const after = (await sessionAuthorizationsByCookie(db, sessionId)) ?? {};

    const frames: string[] = [];
    for (const [clientId, authorization] of Object.entries(before)) {
      if (clientId in after) continue; // still signed in there
      const client = await provider.Client.find(clientId);
      const uri = client?.['frontchannel_logout_uri'];
      if (typeof uri !== 'string') continue;
      const frame = new URL(uri);
      if (client?.['frontchannel_logout_session_required'] && authorization.sid) {
        frame.searchParams.set('iss', issuer);
        frame.searchParams.set('sid', authorization.sid);
      }
      frames.push(frame.href);
    }
    if (frames.length === 0) return;

    const continueTo = ctx.status >= 300 && ctx.status < 400 ? ctx.response.get('location') : undefined;
    const origins = [...new Set(frames.map((frame) => new URL(frame).origin))];
    const csp = ctx.response.get('content-security-policy');
    if (csp) ctx.set('content-security-policy', `${csp};frame-src ${origins.join(' ')}`);
    renderPage(ctx, 'frontchannel-logout', { title: 'frontchannel.title', frames, continueTo });
  };
}
