import Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import { inspectLinkToken, type LinkPurpose } from '../accounts/one-time-links.js';
import { findAccountById } from '../accounts/store.js';
import type { PlainKey } from '../i18n/catalogue.js';
import { confirmEmailChange, confirmEmailVerification, revertEmailChange } from '../use-cases/change-email.js';
import { issueCsrfToken } from './csrf.js';
import { formBody, readForm } from './forms.js';
import { currentLanguage, useLanguage } from './language.js';
import { renderNotice, renderUnusableLink } from './link-pages.js';
import { pageTranslator, renderPage } from './render.js';
import { routerOptions } from './routing.js';
import type { SelfServiceDeps } from './self-service.js';

const linkForm = z.object({ token: z.string().max(200).default(''), _csrf: z.string().max(200).optional() });
const toAccount = { href: '/account', label: 'link.toAccount' } as const;

/**
 * The email links: GET shows what the link will do and asks to confirm; only the POST spends
 * it. Mail scanners that prefetch links therefore change nothing.
 */
export function emailLinkRoutes(deps: SelfServiceDeps): Router {
  const { db } = deps;
  const router = new Router({ ...routerOptions, prefix: '/email' });
  router.use(issueCsrfToken);

  async function showConfirmation(
    ctx: Context,
    purpose: LinkPurpose,
    page: { title: PlainKey; lead: 'verify.lead' | 'emailChange.lead' | 'emailRevert.lead'; submit: PlainKey; action: string },
  ) {
    const token = ctx.query['token'];
    const link = await inspectLinkToken(db, token, purpose);
    if (link.status !== 'valid') return renderUnusableLink(ctx, link.status, toAccount);
    const account = await findAccountById(db, link.accountId);
    useLanguage(ctx, { accountLocale: account?.locale });
    const t = pageTranslator(ctx);
    renderPage(ctx, 'link-confirm', {
      title: page.title,
      lead: t(page.lead, { email: link.email }),
      submit: t(page.submit),
      action: page.action,
      token,
    });
  }

  router.get('/verify', (ctx) =>
    showConfirmation(ctx, 'verify_email', { title: 'verify.title', lead: 'verify.lead', submit: 'verify.submit', action: '/email/verify' }),
  );

  router.post('/verify', formBody, async (ctx) => {
    const form = readForm(ctx, linkForm);
    const result = await confirmEmailVerification(deps, { token: form.token, ip: ctx.ip });
    if (result.status !== 'verified') return renderUnusableLink(ctx, result.status, toAccount);
    renderNotice(ctx, 'verify.done.title', [pageTranslator(ctx)('verify.done.lead', { email: result.email })], toAccount);
  });

  router.get('/change', (ctx) =>
    showConfirmation(ctx, 'change_email', {
      title: 'emailChange.title',
      lead: 'emailChange.lead',
      submit: 'emailChange.submit',
      action: '/email/change',
    }),
  );

  router.post('/change', formBody, async (ctx) => {
    const form = readForm(ctx, linkForm);
    const t = pageTranslator(ctx);
    const result = await confirmEmailChange(deps, { token: form.token, ip: ctx.ip, language: currentLanguage(ctx) });
    if (result.status === 'conflict') {
      return renderNotice(ctx, 'emailChange.title', [t('emailChange.failed'), t('link.nothingChanged')], toAccount, 409);
    }
    if (result.status !== 'changed') return renderUnusableLink(ctx, result.status, toAccount);
    renderNotice(ctx, 'emailChange.done.title', [t('emailChange.done.lead', { email: result.email })], toAccount);
  });

  // The link mailed to the previous address: cancels a pending change, or undoes one that went through.
  router.get('/revert', (ctx) =>
    showConfirmation(ctx, 'revert_email_change', {
      title: 'emailRevert.title',
      lead: 'emailRevert.lead',
      submit: 'emailRevert.submit',
      action: '/email/revert',
    }),
  );

  router.post('/revert', formBody, async (ctx) => {
    const form = readForm(ctx, linkForm);
    const t = pageTranslator(ctx);
    const result = await revertEmailChange(deps, { token: form.token, ip: ctx.ip });
    if (result.status === 'conflict')
      return renderNotice(ctx, 'emailRevert.title', [t('emailRevert.failed'), t('link.nothingChanged')], undefined, 409);
    if (result.status !== 'cancelled' && result.status !== 'restored') return renderUnusableLink(ctx, result.status, toAccount);
    if (result.status === 'cancelled') {
      return renderNotice(ctx, 'emailRevert.cancelled.title', [t('emailRevert.cancelled.lead', { email: result.email })], toAccount);
    }
    renderNotice(ctx, 'emailRevert.restored.title', [t('emailRevert.restored.lead', { email: result.email })], {
      href: '/password/forgot',
      label: 'link.requestReset',
    });
  });

  return router;
}
