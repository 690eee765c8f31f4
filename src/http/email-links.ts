import Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import { confirmEmailChange, confirmEmailVerification } from '../accounts/email-ownership.js';
import { inspectLinkToken, type LinkPurpose } from '../accounts/one-time-links.js';
import { findAccountById } from '../accounts/store.js';
import { recordAuditEvent } from '../audit/log.js';
import type { PlainKey } from '../i18n/catalogue.js';
import { issueCsrfToken } from './csrf.js';
import { formBody, readForm } from './forms.js';
import { currentLanguage, useLanguage } from './language.js';
import { sendNotice } from './link-mail.js';
import { renderNotice, renderUnusableLink } from './link-pages.js';
import { pageTranslator, renderPage } from './render.js';
import type { SelfServiceDeps } from './self-service.js';

const linkForm = z.object({ token: z.string().max(200).default(''), _csrf: z.string().max(200).optional() });
const toAccount = { href: '/account', label: 'link.toAccount' } as const;

/**
 * The email links: GET shows what the link will do and asks to confirm; only the POST spends
 * it. Mail scanners that prefetch links therefore change nothing.
 */
export function emailLinkRoutes(deps: SelfServiceDeps): Router {
  const { db } = deps;
  const router = new Router({ prefix: '/email' });
  router.use(issueCsrfToken);

  async function showConfirmation(
    ctx: Context,
    purpose: LinkPurpose,
    page: { title: PlainKey; lead: 'verify.lead' | 'emailChange.lead'; submit: PlainKey; action: string },
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
    const result = await confirmEmailVerification(db, form.token);
    if (result.status !== 'verified') return renderUnusableLink(ctx, result.status, toAccount);
    await recordAuditEvent(db, { event: 'email.verified', outcome: 'success', actor: result.accountId, ip: ctx.ip });
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
    const result = await confirmEmailChange(db, form.token);
    if (result.status === 'conflict') {
      return renderNotice(ctx, 'emailChange.title', [t('emailChange.failed'), t('link.nothingChanged')], toAccount, 409);
    }
    if (result.status !== 'changed') return renderUnusableLink(ctx, result.status, toAccount);
    await recordAuditEvent(db, { event: 'email.changed', outcome: 'success', actor: result.accountId, ip: ctx.ip });
    // The old address hears of the change, so a hijacked account does not change hands silently.
    await sendNotice(deps, 'email_changed', { to: result.previousEmail, accountId: result.accountId, language: currentLanguage(ctx) });
    renderNotice(ctx, 'emailChange.done.title', [t('emailChange.done.lead', { email: result.email })], toAccount);
  });

  return router;
}
