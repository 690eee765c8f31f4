import type Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import { emailKey } from '../../accounts/email-key.js';
import { pendingLink } from '../../accounts/one-time-links.js';
import { emailSchema, profileSchema, updateProfile } from '../../accounts/store.js';
import { recordAuditEvent } from '../../audit/log.js';
import { TooManyAttempts } from '../../errors.js';
import { mailRequester } from '../../security/throttle.js';
import { requestEmailChange } from '../../use-cases/change-email.js';
import { mailLink } from '../../use-cases/mail-person.js';
import { languageNames, languages } from '../../i18n/catalogue.js';
import { defaultTimeZone, timeZoneChoices } from '../../i18n/time-zones.js';
import { tooManyAttemptsMessage } from '../errors.js';
import { firstProblem } from '../form-errors.js';
import { formBody, readForm } from '../forms.js';
import { currentLanguage } from '../language.js';
import { pageTranslator } from '../render.js';
import type { SelfServiceDeps } from '../self-service.js';
import { reauthenticate } from './reauthenticate.js';
import { signedIn } from './session.js';
import { doneRedirect, renderAccountPage } from './view.js';

const text = z.string().max(1000).default('');
const profileForm = z.object({
  name: text,
  givenName: text,
  familyName: text,
  locale: text,
  zoneinfo: text,
  _csrf: z.string().max(200).optional(),
});
const emailForm = z.object({ newEmail: text, password: text, _csrf: z.string().max(200).optional() });
const csrfOnly = z.object({ _csrf: z.string().max(200).optional() });
const newEmailFields = z.object({ newEmail: emailSchema });

type ProfileValues = z.output<typeof profileForm>;

/** Your details: the four profile claims a person may edit, and their email address. */
export function profileRoutes(router: Router, deps: SelfServiceDeps): void {
  const { db, throttle } = deps;

  async function renderProfile(
    ctx: Context,
    extra: {
      values?: ProfileValues;
      newEmail?: string;
      error?: string;
      errorField?: string;
      emailError?: string;
      passwordError?: boolean;
    } = {},
    status = 200,
  ) {
    const { account } = signedIn(ctx);
    const values = extra.values ?? {
      name: account.name ?? '',
      givenName: account.givenName ?? '',
      familyName: account.familyName ?? '',
      locale: account.locale ?? '',
      zoneinfo: account.zoneinfo ?? '',
    };
    const t = pageTranslator(ctx);
    // The supported languages, plus whatever tag the account holds (set by an admin, say).
    const localeOptions = [
      { value: '', label: t('profile.locale.unset') },
      ...languages.map((code) => ({ value: code, label: languageNames[code] })),
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
        zoneOptions: [
          { value: '', label: t('profile.zoneinfo.unset', { zone: defaultTimeZone(currentLanguage(ctx)) }) },
          ...timeZoneChoices(currentLanguage(ctx)),
        ],
        newEmail: extra.newEmail ?? '',
        pendingEmail: pending ? t('email.change.pending', { email: pending.email }) : undefined,
        error: extra.error,
        errorField: extra.errorField,
        emailError: extra.emailError,
        passwordError: extra.passwordError,
      },
      status,
    );
  }

  router.get('/', (ctx) => renderProfile(ctx));

  router.post('/profile', formBody, async (ctx) => {
    const form = readForm(ctx, profileForm);
    const { account } = signedIn(ctx);
    const blankIsNull = (value: string) => (value.trim() === '' ? null : value);
    const parsed = profileSchema.safeParse({ ...form, locale: blankIsNull(form.locale), zoneinfo: blankIsNull(form.zoneinfo) });
    if (!parsed.success) {
      const problem = firstProblem(pageTranslator(ctx), parsed.error);
      return renderProfile(ctx, { values: form, error: problem.message, errorField: problem.field }, 400);
    }
    await updateProfile(db, account.id, parsed.data);
    await recordAuditEvent(db, { event: 'profile.updated', outcome: 'success', actor: account.id, ip: ctx.ip });
    doneRedirect(ctx, '/account', 'profile-saved');
  });

  // Moving the account to another address hands over every password reset: it needs the
  // current password, so a few minutes at someone's unlocked browser are not enough.
  router.post('/email', formBody, async (ctx) => {
    const form = readForm(ctx, emailForm);
    const { account } = signedIn(ctx);
    const t = pageTranslator(ctx);
    const parsed = newEmailFields.safeParse(form);
    if (!parsed.success) return renderProfile(ctx, { newEmail: form.newEmail, emailError: firstProblem(t, parsed.error).message }, 400);
    const newEmail = parsed.data.newEmail;
    if (emailKey(newEmail) === emailKey(account.email)) {
      return renderProfile(ctx, { newEmail, emailError: t('email.change.same') }, 400);
    }
    const wrong = await reauthenticate(ctx, deps, account, form.password);
    if (wrong) return renderProfile(ctx, { newEmail, emailError: wrong, passwordError: true }, ctx.status === 429 ? 429 : 400);
    try {
      await requestEmailChange(deps, { account, newEmail, actor: { kind: 'self', ip: ctx.ip }, language: currentLanguage(ctx) });
    } catch (error) {
      if (!(error instanceof TooManyAttempts)) throw error;
      ctx.set('retry-after', String(error.retryAfterSeconds));
      return renderProfile(ctx, { newEmail, emailError: tooManyAttemptsMessage(t, error) }, 429);
    }
    doneRedirect(ctx, '/account', 'email-change-sent');
  });

  router.post('/email/resend', formBody, async (ctx) => {
    readForm(ctx, csrfOnly);
    const { account } = signedIn(ctx);
    if (account.emailVerified) return doneRedirect(ctx, '/account', 'profile-saved');
    try {
      await throttle.consumeAccountMailRequest(account.id);
    } catch (error) {
      if (!(error instanceof TooManyAttempts)) throw error;
      ctx.set('retry-after', String(error.retryAfterSeconds));
      return renderProfile(ctx, { error: tooManyAttemptsMessage(pageTranslator(ctx), error) }, 429);
    }
    await mailLink(
      deps,
      'verify_email',
      { to: account.email, accountId: account.id, language: currentLanguage(ctx) },
      mailRequester.owner(account.id),
    );
    doneRedirect(ctx, '/account', 'email-resent');
  });
}
