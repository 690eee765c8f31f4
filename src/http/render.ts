import { fileURLToPath } from 'node:url';
import { Eta } from 'eta';
import type { Context } from 'koa';

export const viewsDirectory = fileURLToPath(new URL('../../views/', import.meta.url));

// autoEscape: every `<%= %>` is HTML-escaped; raw output (`<%~ %>`) is reserved for the
// layout body and the logout form oidc-provider builds.
const eta = new Eta({ views: viewsDirectory, autoEscape: true, cache: true, autoTrim: false });

export interface PageData {
  title: string;
  [key: string]: unknown;
}

/** Renders views/<template>.eta inside the layout, with the CSRF token when the page has forms. */
export function renderPage(ctx: Context, template: string, data: PageData, status = 200): void {
  ctx.status = status;
  ctx.type = 'html';
  ctx.set('cache-control', 'no-store');
  ctx.body = eta.render(template, { csrfToken: ctx.state['csrfToken'] as string | undefined, ...data });
}
