import { errors as oidcErrors, type KoaContextWithOIDC } from 'oidc-provider';
import type { ProviderPages } from '../oidc/provider.js';
import { useLanguage } from './language.js';
import { pageTranslator, renderPage } from './render.js';

function clientName(ctx: KoaContextWithOIDC): string | undefined {
  const client = ctx.oidc?.client;
  return client ? (client.clientName ?? client.clientId) : undefined;
}

/** The service's ui_locales hint, when the request carried one. */
function hints(ctx: KoaContextWithOIDC) {
  return { uiLocales: (ctx.oidc?.params as Record<string, unknown> | undefined)?.['ui_locales'] };
}

/** oidc-provider's own pages (errors, logout) in our layout and languages. */
export const providerPages: ProviderPages = {
  async renderError(ctx, out, error) {
    useLanguage(ctx, hints(ctx));
    // The spec's error code and the library's description are shown as technical details
    // (they are for the service's developers); the person reads a message in their language.
    renderPage(
      ctx,
      'error',
      {
        title: 'error.title',
        heading: 'error.heading',
        message: pageTranslator(ctx)(error instanceof oidcErrors.SessionNotFound ? 'error.sessionNotFound' : 'error.oidcRequest'),
        code: out.error,
        details: out.error_description,
      },
      ctx.status >= 400 ? ctx.status : 400,
    );
  },
  async logoutConfirmation(ctx, form) {
    useLanguage(ctx, hints(ctx));
    renderPage(ctx, 'logout', { title: 'logout.title', clientName: clientName(ctx), form });
  },
  async logoutSuccess(ctx) {
    useLanguage(ctx, hints(ctx));
    renderPage(ctx, 'logged-out', { title: 'loggedOut.title', clientName: clientName(ctx) });
  },
};
