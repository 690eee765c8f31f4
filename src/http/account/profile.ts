import type Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import { issueLinkToken, pendingLink } from '../../accounts/one-time-links.js';
import { emailSchema, findAccountByEmail, profileSchema, updateProfile } from '../../accounts/store.js';
import { recordAuditEvent } from '../../audit/log.js';
import { TooManyAttempts } from '../../errors.js';
import { languages } from '../../i18n/catalogue.js';
import { tooManyAttemptsMessage } from '../errors.js';
import { firstProblem } from '../form-errors.js';
import { formBody, readForm } from '../forms.js';
import { currentLanguage } from '../language.js';
import { sendLink, sendNotice } from '../link-mail.js';
import { pageTranslator } from '../render.js';
import type { SelfServiceDeps } from '../self-service.js';
import { signedIn } from './session.js';
import { doneRedirect, renderAccountPage } from './view.js';

const text = z.string().max(1000).default('');
const profileForm = z.object({ name: text, givenName: text, familyName: text, locale: text, _csrf: z.string().max(200).optional() });
const emailForm = z.object({ newEmail: text, _csrf: z.string().max(200).optional() });
const csrfOnly = z.object({ _csrf: z.string().max(200).optional() });
const newEmailFields = z.object({ newEmail: emailSchema });

type ProfileValues = z.output<typeof profileForm>;

/** Your details: the four profile claims a person may edit, and their email address. */
export function profileRoutes(router: Router, deps: SelfServiceDeps): void {
  const { db, throttle } = deps;

  async function renderProfile(
    ctx: Context,
    extra: { values?: ProfileValues; newEmail?: string; error?: string; errorField?: string; emailError?: string } = {},
    status = 200,
  ) {
    const { account } = signedIn(ctx);
    const values = extra.values ?? {
      name: account.name ?? '',
      givenName: account.givenName ?? '',
      familyName: account.familyName ?? '',
      locale: account.locale ?? '',
    };
    const t = pageTranslator(ctx);
    // The supported languages, plus whatever tag the account holds (set by an admin, say).
    const localeOptions = [
      { value: '', label: t('profile.locale.unset') },
      ...languages.map((code) => ({ value: code, label: t(`language.${code}` as const) })),
      ...(values.locale && !(languages as readonly string[]).includes(values.locale)
        ? [{ value: values.locale, label: values.locale }]
        : []),
    ];
    const pending = await pendingLink(db, account.id, 'change_email');
    renderAccountPage(
      ctx,
      'account/profile',
      'profile',
      {
        title: 'profile.title',
        values,
        localeOptions,
        newEmail: extra.newEmail ?? '',
        pendingEmail: pending ? t('email.change.pending', { email: pending.email }) : undefined,
        error: extra.error,
        errorField: extra.errorField,
        emailError: extra.emailError,
      },
      status,
    );
  }

  router.get('/', (ctx) => renderProfile(ctx));

  router.post('/profile', formBody, async (ctx) => {
    const form = readForm(ctx, profileForm);
    const { account } = signedIn(ctx);
    const parsed = profileSchema.safeParse({ ...form, locale: form.locale.trim() === '' ? null : form.locale });
    if (!parsed.success) {
      const problem = firstProblem(pageTranslator(ctx), parsed.error);
      return renderProfile(ctx, { values: form, error: problem.message, errorField: problem.field }, 400);
    }
    await updateProfile(db, account.id, parsed.data);
    await recordAuditEvent(db, { event: 'profile.updated', outcome: 'success', actor: account.id, ip: ctx.ip });
    doneRedirect(ctx, '/account', 'profile-saved');
  });

  router.post('/email', formBody, async (ctx) => {
    const form = readForm(ctx, emailForm);
    const { account } = signedIn(ctx);
    const t = pageTranslator(ctx);
    const parsed = newEmailFields.safeParse(form);
    if (!parsed.success) return renderProfile(ctx, { newEmail: form.newEmail, emailError: firstProblem(t, parsed.error).message }, 400);
    const newEmail = parsed.data.newEmail;
    if (newEmail.toLowerCase() === account.email.toLowerCase()) {
      return renderProfile(ctx, { newEmail, emailError: t('email.change.same') }, 400);
    }
    try {
      await throttle.consumeAccountMail(account.id);
    } catch (error) {
      if (!(error instanceof TooManyAttempts)) throw error;
      ctx.set('retry-after', String(error.retryAfterSeconds));
      return renderProfile(ctx, { newEmail, emailError: tooManyAttemptsMessage(t, error) }, 429);
    }
    const owner = await findAccountByEmail(db, newEmail);
    const language = currentLanguage(ctx);
    if (owner) {
      // The address has an account. This page must look the same as for a free address, so a
      // pending change is recorded all the same (its link is never sent, and would fail);
      // the address's owner is told instead.
      await issueLinkToken(db, {
        accountId: account.id,
        purpose: 'change_email',
        email: newEmail,
        ttlSeconds: deps.config.selfService.emailVerificationTtl,
        replacePrevious: true,
      });
      await sendNotice(deps, 'change_to_existing', { to: owner.email, accountId: owner.id, language });
    } else {
      await sendLink(deps, 'change_email', { to: newEmail, accountId: account.id, language });
    }
    await recordAuditEvent(db, { event: 'email.change_requested', outcome: 'success', actor: account.id, ip: ctx.ip });
    doneRedirect(ctx, '/account', 'email-change-sent');
  });

  router.post('/email/resend', formBody, async (ctx) => {
    readForm(ctx, csrfOnly);
    const { account } = signedIn(ctx);
    if (account.emailVerified) return doneRedirect(ctx, '/account', 'profile-saved');
    try {
      await throttle.consumeAccountMail(account.id);
    } catch (error) {
      if (!(error instanceof TooManyAttempts)) throw error;
      ctx.set('retry-after', String(error.retryAfterSeconds));
      return renderProfile(ctx, { error: tooManyAttemptsMessage(pageTranslator(ctx), error) }, 429);
    }
    await sendLink(deps, 'verify_email', { to: account.email, accountId: account.id, language: currentLanguage(ctx) });
    doneRedirect(ctx, '/account', 'email-resent');
  });
}
