import type { Context } from 'koa';
import type { LinkFailure } from '../accounts/one-time-links.js';
import type { PlainKey } from '../i18n/catalogue.js';
import { pageTranslator, renderPage } from './render.js';

const failureMessages: Record<LinkFailure, PlainKey> = {
  invalid: 'link.invalid',
  expired: 'link.expired',
  used: 'link.used',
};

/**
 * The page for a link that cannot be used: why, that nothing changed, and what to do next.
 * 400 for a link we never issued (or tampered with); 410 for one that was spent or expired.
 */
export function renderUnusableLink(ctx: Context, failure: LinkFailure, next: { href: string; label: PlainKey }): void {
  const t = pageTranslator(ctx);
  renderPage(
    ctx,
    'notice',
    {
      title: 'link.invalid.title',
      heading: t('link.invalid.title'),
      lines: [t(failureMessages[failure]), t('link.nothingChanged')],
      next: { href: next.href, label: t(next.label) },
      tone: 'error',
    },
    failure === 'invalid' ? 400 : 410,
  );
}

/** A page that only tells something (a result), with an optional link onwards. */
export function renderNotice(ctx: Context, title: PlainKey, lines: string[], next?: { href: string; label: PlainKey }, status = 200): void {
  const t = pageTranslator(ctx);
  renderPage(ctx, 'notice', { title, heading: t(title), lines, next: next && { href: next.href, label: t(next.label) } }, status);
}
