import Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import { inspectLinkToken } from '../accounts/one-time-links.js';
import { passwordSchema } from '../accounts/passwords.js';
import { emailSchema, findAccountById } from '../accounts/store.js';
import { withoutQueryMetrics } from '../db/index.js';
import { TooManyAttempts } from '../errors.js';
import { mailRequester } from '../security/throttle.js';
import { completePasswordReset, requestPasswordReset } from '../use-cases/reset-password.js';
import { issueCsrfToken } from './csrf.js';
import { tooManyAttemptsMessage } from './errors.js';
import { firstProblem } from './form-errors.js';
import { formBody, readForm } from './forms.js';
import { currentLanguage, safeReturnPath, useLanguage } from './language.js';
import { renderNotice, renderUnusableLink } from './link-pages.js';
import { pageTranslator, renderPage } from './render.js';
import { routerOptions } from './routing.js';
import type { SelfServiceDeps } from './self-service.js';

const forgotForm = z.object({
  email: z.string().max(1000).default(''),
  return: z.string().max(2000).optional(),
  _csrf: z.string().max(200).optional(),
});
const resetForm = z.object({
  token: z.string().max(200).default(''),
  password: z.string().max(1000).default(''),
  _csrf: z.string().max(200).optional(),
});
const newPassword = z.object({ password: passwordSchema });
const forgotFields = z.object({ email: emailSchema });
const askAgain = { href: '/password/forgot', label: 'link.requestReset' } as const;

/** Only sign-in pages are offered as the way back (no open redirect). */
function backToSignIn(value: unknown): string {
  const path = safeReturnPath(value);
  return path && /^\/interaction\/[\w-]+$/.test(path) ? path : '/account/sign-in';
}

/**
 * Runs work once the response has gone out, and outside the query metrics: for work whose
 * very statements depend on whether an address has an account. Failures are logged; the
 * person can ask again.
 */
function afterResponse(ctx: Context, deps: SelfServiceDeps, what: string, work: () => Promise<unknown>): void {
  const log = (ctx.state['log'] as SelfServiceDeps['logger'] | undefined) ?? deps.logger;
  ctx.res.once('finish', () => {
    withoutQueryMetrics(work).catch((error: unknown) => log.error({ err: error }, `${what} failed`));
  });
}

/**
 * "Forgot password": the answer is the same whether or not the address has an account, and
 * so are its timing and the metrics: the lookup and the mail happen after the response. The
 * link is single use, expires, and setting the new password ends every session of the account.
 */
export function passwordResetRoutes(deps: SelfServiceDeps): Router {
  const { db, throttle, config } = deps;
  const router = new Router({ ...routerOptions, prefix: '/password' });
  router.use(issueCsrfToken);

  function renderForgot(ctx: Context, values: { email?: string; back: string; error?: string }, status = 200) {
    ctx.state['returnPath'] = `/password/forgot?return=${encodeURIComponent(values.back)}`;
    renderPage(ctx, 'forgot', { title: 'forgot.title', email: values.email ?? '', back: values.back, error: values.error }, status);
  }

  function renderReset(ctx: Context, values: { token: string; email: string; error?: string }, status = 200) {
    renderPage(ctx, 'reset', { title: 'reset.title', token: values.token, email: values.email, error: values.error }, status);
  }

  router.get('/forgot', (ctx) => renderForgot(ctx, { back: backToSignIn(ctx.query['return']) }));

  router.post('/forgot', formBody, async (ctx) => {
    const form = readForm(ctx, forgotForm);
    const t = pageTranslator(ctx);
    const back = backToSignIn(form.return);
    const fields = forgotFields.safeParse({ email: form.email });
    if (!fields.success) {
      renderForgot(ctx, { email: form.email, back, error: firstProblem(t, fields.error).message }, 400);
      return;
    }
    const email = fields.data.email;
    try {
      await throttle.consumePasswordResetRequest(ctx.ip);
    } catch (error) {
      if (!(error instanceof TooManyAttempts)) throw error;
      ctx.set('retry-after', String(error.retryAfterSeconds));
      renderForgot(ctx, { email: form.email, back, error: tooManyAttemptsMessage(t, error) }, 429);
      return;
    }
    const request = { email, requester: mailRequester.ip(ctx.ip), ip: ctx.ip, language: currentLanguage(ctx) };
    afterResponse(ctx, deps, 'password-reset request', () => requestPasswordReset(deps, request));
    const minutes = Math.round(config.selfService.passwordResetTtl / 60);
    renderNotice(ctx, 'forgot.sent.title', [t('forgot.sent.lead', { email, minutes }), t('forgot.sent.help')], {
      href: back,
      label: 'forgot.back',
    });
  });

  router.get('/reset', async (ctx) => {
    const token = String(ctx.query['token'] ?? '');
    const link = await inspectLinkToken(db, token, 'reset_password');
    if (link.status !== 'valid') return renderUnusableLink(ctx, link.status, askAgain);
    useLanguage(ctx, { accountLocale: (await findAccountById(db, link.accountId))?.locale });
    renderReset(ctx, { token, email: link.email });
  });

  router.post('/reset', formBody, async (ctx) => {
    const form = readForm(ctx, resetForm);
    const t = pageTranslator(ctx);
    const link = await inspectLinkToken(db, form.token, 'reset_password');
    if (link.status !== 'valid') return renderUnusableLink(ctx, link.status, askAgain);
    ctx.state['returnPath'] = `/password/reset?token=${encodeURIComponent(form.token)}`;
    const fields = newPassword.safeParse({ password: form.password });
    if (!fields.success) {
      renderReset(ctx, { token: form.token, email: link.email, error: firstProblem(t, fields.error).message }, 400);
      return;
    }
    const result = await completePasswordReset(deps, {
      token: form.token,
      newPassword: fields.data.password,
      ip: ctx.ip,
      language: currentLanguage(ctx),
    });
    if (result.status !== 'reset') return renderUnusableLink(ctx, result.status, askAgain);
    renderNotice(ctx, 'reset.done.title', [t('reset.done.lead')], { href: '/account', label: 'link.toAccount' });
  });

  return router;
}
