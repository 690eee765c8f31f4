import { fileURLToPath } from 'node:url';
import { Eta } from 'eta';
import type { Context, Next } from 'koa';
import type { Config } from '../config.js';
import { formatDateTime, languageNames, languages, translator, type PlainKey, type Translate } from '../i18n/catalogue.js';
import { timeZoneFor } from '../i18n/time-zones.js';
import { currentLanguage, switcherReturnPath } from './language.js';

export const viewsDirectory = fileURLToPath(new URL('../../views/', import.meta.url));

// autoEscape: every `<%= %>` is HTML-escaped; raw output (`<%~ %>`) is reserved for the
// layout body, partials and the logout form oidc-provider builds.
const eta = new Eta({ views: viewsDirectory, autoEscape: true, cache: true, autoTrim: false });

export interface PageData {
  /** Catalogue key of the page title. */
  title: PlainKey;
  [key: string]: unknown;
}

/** Footer facts from the configuration, the same on every page. */
export interface SiteInfo {
  privacyPolicyUrl: string | undefined;
  privacyContact: { href: string; label: string } | undefined;
}

export function siteInfo(config: Config): SiteInfo {
  const contact = config.privacy.contact;
  return {
    privacyPolicyUrl: config.privacy.policyUrl,
    privacyContact: contact
      ? { href: contact.includes('@') && !contact.includes('/') ? `mailto:${contact}` : contact, label: contact }
      : undefined,
  };
}

/** Makes the footer facts available to every page rendered below, error pages included. */
export function pageContext(config: Config) {
  const site = siteInfo(config);
  return async function provideSite(ctx: Context, next: Next): Promise<void> {
    ctx.state['site'] = site;
    await next();
  };
}

/** The catalogue in the language of this request. */
export function pageTranslator(ctx: Context): Translate {
  return translator(currentLanguage(ctx));
}

/**
 * Renders views/<template>.eta inside the layout, in the request's language, with the CSRF
 * token when the page has forms. Pages are never cached: they carry personal data or
 * one-time form tokens.
 */
export function renderPage(ctx: Context, template: string, data: PageData, status = 200): void {
  const lang = currentLanguage(ctx);
  const t = translator(lang);
  const returnPath = switcherReturnPath(ctx);
  ctx.status = status;
  ctx.type = 'html';
  ctx.set('cache-control', 'no-store');
  ctx.set('content-language', lang);
  ctx.body = eta.render(template, {
    csrfToken: ctx.state['csrfToken'] as string | undefined,
    site: ctx.state['site'] as SiteInfo | undefined,
    ...data,
    title: t(data.title),
    documentTitle: t('site.pageTitle', { page: t(data.title) }),
    lang,
    // Attributes that tie an input to its help text and, when it is the field in error, to
    // the error message: raw output, built only from these fixed ids.
    fieldAttributes: (field: string, helpId?: string) => {
      const invalid = data['errorField'] === field;
      const describedBy = [invalid ? 'form-error' : undefined, helpId].filter(Boolean).join(' ');
      return `${invalid ? 'aria-invalid="true" ' : ''}${describedBy ? `aria-describedby="${describedBy}"` : ''}`;
    },
    t,
    // In the signed-in person's zone (account pages), else their language's.
    formatDate: (date: Date) => formatDateTime(lang, date, timeZoneFor(data['account'] as { zoneinfo?: string | null } | undefined, lang)),
    switcher: languages.map((code) => ({
      code,
      label: languageNames[code],
      href: `/lang/${code}?next=${encodeURIComponent(returnPath)}`,
      current: code === lang,
    })),
  });
}
