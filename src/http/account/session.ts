import type { Context, Next } from 'koa';
import { endAccountSession, resumeAccountSession, startAccountSession } from '../../accounts/account-sessions.js';
import { findAccountById, type Account } from '../../accounts/store.js';
import { networkPrefix } from '../../security/client-address.js';
import { describeUserAgent } from '../../security/user-agent.js';
import { useLanguage } from '../language.js';
import type { SelfServiceDeps } from '../self-service.js';

/**
 * The account pages' own session: a random id in a signed, httpOnly, SameSite=Lax cookie
 * scoped to /account, looked up server-side (account_sessions) on every request, so signing
 * out, a password change or account deletion ends it at once.
 */
export const ACCOUNT_COOKIE = 'idp.account';
const cookieOptions = (ctx: Context) =>
  ({ httpOnly: true, sameSite: 'lax', signed: true, secure: ctx.secure, path: '/account', overwrite: true }) as const;

export interface SignedIn {
  account: Account;
  sessionId: string;
}

/** Finds the person behind the cookie (if any) and sets the page language from their locale. */
export function loadAccountSession(deps: SelfServiceDeps) {
  return async function resumeSession(ctx: Context, next: Next): Promise<void> {
    const sessionId = ctx.cookies.get(ACCOUNT_COOKIE, { signed: true });
    if (sessionId) {
      const accountId = await resumeAccountSession(deps.db, sessionId, deps.config.selfService.accountSessionTtl);
      const account = accountId ? await findAccountById(deps.db, accountId) : undefined;
      if (account && !account.disabledAt) ctx.state['signedIn'] = { account, sessionId } satisfies SignedIn;
    }
    useLanguage(ctx, { accountLocale: (ctx.state['signedIn'] as SignedIn | undefined)?.account.locale });
    await next();
  };
}

/** Sends people who are not signed in to the sign-in page, and back here afterwards. */
export async function requireSignIn(ctx: Context, next: Next): Promise<void> {
  if (ctx.state['signedIn']) return next();
  const back = ctx.method === 'GET' ? ctx.originalUrl : '/account';
  ctx.set('cache-control', 'no-store');
  ctx.status = 303;
  ctx.redirect(`/account/sign-in?next=${encodeURIComponent(back)}`);
}

export function signedIn(ctx: Context): SignedIn {
  const session = ctx.state['signedIn'] as SignedIn | undefined;
  if (!session) throw new Error('requireSignIn must run before this route');
  return session;
}

export async function beginAccountSession(ctx: Context, deps: SelfServiceDeps, accountId: string): Promise<void> {
  const previous = ctx.cookies.get(ACCOUNT_COOKIE, { signed: true });
  if (previous) await endAccountSession(deps.db, previous);
  // A fresh id at every sign-in: an id planted before sign-in is never promoted.
  const device = { ...describeUserAgent(ctx.get('user-agent') || undefined), ipPrefix: networkPrefix(ctx.ip) };
  const sessionId = await startAccountSession(deps.db, accountId, deps.config.selfService.accountSessionTtl, device);
  ctx.cookies.set(ACCOUNT_COOKIE, sessionId, cookieOptions(ctx));
}

export async function finishAccountSession(ctx: Context, deps: SelfServiceDeps): Promise<void> {
  const sessionId = ctx.cookies.get(ACCOUNT_COOKIE, { signed: true });
  if (sessionId) await endAccountSession(deps.db, sessionId);
  ctx.cookies.set(ACCOUNT_COOKIE, null, cookieOptions(ctx));
}
