import type Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import { formBody, readForm } from '../forms.js';
import { safeReturnPath } from '../language.js';
import { pageTranslator, renderPage } from '../render.js';
import type { SelfServiceDeps } from '../self-service.js';
import { signInFromPage } from '../sign-in/password.js';
import type { SignInDoor } from '../sign-in/door.js';
import { continueSignIn, passkeyChoice, signInStepRoutes } from '../sign-in/steps.js';
import { beginAccountSession, finishAccountSession } from './session.js';

const signInForm = z.object({
  email: z.string().max(1000).default(''),
  password: z.string().max(1000).default(''),
  next: z.string().max(2000).optional(),
  _csrf: z.string().max(200).optional(),
});

/** Only account pages are offered as the destination after sign-in. */
function afterSignIn(value: unknown): string {
  const path = safeReturnPath(value);
  return path && /^\/account(\/|\?|$)/.test(path) && !path.startsWith('/account/sign-') ? path : '/account';
}

/**
 * Signing in to the account pages reuses the login form and the same sign-in attempt as
 * services (lockout, enumeration-safe answers, audit), then starts an account-page session.
 */
export function accountSignInRoutes(router: Router, deps: SelfServiceDeps): void {
  /** The account pages as a door of the sign-in steps: no level asked, finished by an account-page session. */
  function doorFor(next: string): SignInDoor {
    const carry = `?next=${encodeURIComponent(next)}`;
    return {
      name: 'account',
      base: '/account/sign-in',
      carry,
      clientId: null,
      required: undefined,
      restartUrl: `/account/sign-in${carry}`,
      async finish(ctx, signIn) {
        await beginAccountSession(ctx, deps, signIn.accountId);
        ctx.status = 303;
        ctx.redirect(next);
      },
      restart: (ctx, message, status) => renderSignIn(ctx, { next, error: message }, status),
    };
  }

  async function renderSignIn(ctx: Context, values: { email?: string; next: string; error?: string; notice?: string }, status = 200) {
    const t = pageTranslator(ctx);
    ctx.state['returnPath'] = `/account/sign-in?next=${encodeURIComponent(values.next)}`;
    renderPage(
      ctx,
      'login',
      {
        title: 'accountSignIn.title',
        heading: t('accountSignIn.title'),
        lead: t('accountSignIn.lead'),
        action: '/account/sign-in',
        next: values.next,
        forgotUrl: '/password/forgot',
        passkeyAction: `/account/sign-in/passkey?next=${encodeURIComponent(values.next)}`,
        ...(await passkeyChoice(deps, doorFor(values.next))),
        email: values.email ?? '',
        error: values.error,
        notice: values.notice,
      },
      status,
    );
  }

  router.get('/sign-in', async (ctx) => {
    if (ctx.state['signedIn']) {
      ctx.status = 303;
      return ctx.redirect(afterSignIn(ctx.query['next']));
    }
    const notice = ctx.query['done'] === 'signed-out' ? pageTranslator(ctx)('accountSignIn.signedOut') : undefined;
    await renderSignIn(ctx, { next: afterSignIn(ctx.query['next']), notice });
  });

  router.post('/sign-in', formBody, async (ctx) => {
    const form = readForm(ctx, signInForm);
    const next = afterSignIn(form.next);
    const outcome = await signInFromPage(ctx, deps, { email: form.email, password: form.password, clientId: null });
    if (!outcome.ok) {
      await renderSignIn(ctx, { email: form.email, next, error: outcome.message }, outcome.status);
      return;
    }
    await continueSignIn(ctx, deps, doorFor(next), { account: outcome.account, amr: ['pwd'], factors: outcome.factors });
  });

  signInStepRoutes(router, deps, '/sign-in', async (ctx) => doorFor(afterSignIn(ctx.query['next'])));

  router.post('/sign-out', formBody, async (ctx) => {
    readForm(ctx, z.object({ _csrf: z.string().max(200).optional() }));
    await finishAccountSession(ctx, deps);
    ctx.status = 303;
    ctx.redirect('/account/sign-in?done=signed-out');
  });
}
