import type { KoaContextWithOIDC } from 'oidc-provider';
import type { ProviderPages } from '../oidc/provider.js';
import { renderPage } from './render.js';

function clientName(ctx: KoaContextWithOIDC): string | undefined {
  const client = ctx.oidc?.client;
  return client ? (client.clientName ?? client.clientId) : undefined;
}

/** oidc-provider's own pages (errors, logout) in our layout. */
export const providerPages: ProviderPages = {
  async renderError(ctx, out) {
    // Describe the problem without echoing attacker-controlled detail beyond the spec's error code.
    renderPage(
      ctx,
      'error',
      {
        title: 'Something went wrong',
        heading: 'We could not complete this request',
        message: out.error_description ?? 'The request was not valid.',
        code: out.error,
      },
      ctx.status >= 400 ? ctx.status : 400,
    );
  },
  async logoutConfirmation(ctx, form) {
    renderPage(ctx, 'logout', { title: 'Sign out', clientName: clientName(ctx), form });
  },
  async logoutSuccess(ctx) {
    renderPage(ctx, 'logged-out', { title: 'Signed out', clientName: clientName(ctx) });
  },
};
