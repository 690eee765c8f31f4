import Router from '@koa/router';
import type { Context } from 'koa';
import { routerOptions } from './routing.js';
import { acceptedLanguages, defaultLanguage, isLanguage, languageOfTag, type Language } from '../i18n/catalogue.js';

/** The language a person picked with the switcher on this device. */
export const LANGUAGE_COOKIE = 'lang';

export interface LanguageHints {
  /** The service's `ui_locales` request parameter: space-separated tags, preferred first. */
  uiLocales?: unknown;
  /** The account's `locale` claim, once we know who is there. */
  accountLocale?: string | null;
}

/**
 * Picks the page language. An explicit choice on the switcher comes first (otherwise the
 * switcher could not override a service's hint); then the service's `ui_locales`, then the
 * account's locale, then the browser's Accept-Language; English when nothing matches.
 */
export function requestLanguage(ctx: Context, hints: LanguageHints = {}): Language {
  const chosen = ctx.cookies.get(LANGUAGE_COOKIE);
  if (isLanguage(chosen)) return chosen;
  if (typeof hints.uiLocales === 'string') {
    for (const tag of hints.uiLocales.split(' ')) {
      const language = languageOfTag(tag);
      if (language) return language;
    }
  }
  const fromAccount = languageOfTag(hints.accountLocale);
  if (fromAccount) return fromAccount;
  return acceptedLanguages(ctx.get('accept-language'))[0] ?? defaultLanguage;
}

/** Sets the language of the page this request renders (and of any mail it sends). */
export function useLanguage(ctx: Context, hints: LanguageHints): Language {
  const language = requestLanguage(ctx, hints);
  ctx.state['lang'] = language;
  return language;
}

/** The language chosen for this request so far. */
export function currentLanguage(ctx: Context): Language {
  const language = ctx.state['lang'];
  return isLanguage(language) ? language : requestLanguage(ctx);
}

/**
 * A path on this site to send the browser back to: must start with one "/" (not "//" or
 * "/\", which browsers read as another host) and hold no control characters.
 */
export function safeReturnPath(value: unknown): string | undefined {
  if (typeof value !== 'string' || value.length > 2000) return undefined;
  if (!/^\/(?![/\\])/.test(value) || [...value].some((char) => char.charCodeAt(0) < 0x20 || char.charCodeAt(0) === 0x7f)) return undefined;
  return value;
}

/**
 * Where the switcher returns to: the page itself for a GET; for a page rendered by a form
 * post, the GET page the route named (ctx.state.returnPath), else the account page.
 */
export function switcherReturnPath(ctx: Context): string {
  if (ctx.method === 'GET' || ctx.method === 'HEAD') return ctx.originalUrl;
  return safeReturnPath(ctx.state['returnPath']) ?? '/account';
}

/** GET /lang/:code?next=/path — remembers the choice for a year and goes back. Works without JavaScript. */
export function languageRoutes(): Router {
  const router = new Router(routerOptions);
  router.get('/lang/:code', (ctx) => {
    const code = ctx.params['code'];
    if (!isLanguage(code)) return; // falls through to 404
    ctx.cookies.set(LANGUAGE_COOKIE, code, {
      httpOnly: true,
      sameSite: 'lax',
      secure: ctx.secure,
      maxAge: 365 * 24 * 3600 * 1000,
      overwrite: true,
    });
    ctx.set('cache-control', 'no-store');
    ctx.status = 303;
    ctx.redirect(safeReturnPath(ctx.query['next']) ?? '/account');
  });
  return router;
}
