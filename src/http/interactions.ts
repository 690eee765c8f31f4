import Router from '@koa/router';
import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import { errors as oidcErrors, type InteractionResults } from 'oidc-provider';
import { z } from 'zod';
import { describeScopes } from '../accounts/claims.js';
import { passwordSchema } from '../accounts/passwords.js';
import { createAccount, findAccountByEmail, findAccountById } from '../accounts/store.js';
import { recordAuditEvent } from '../audit/log.js';
import { Conflict, TooManyAttempts } from '../errors.js';
import { mailRequester } from '../security/throttle.js';
import { mailLink, mailPerson } from '../use-cases/mail-person.js';
import { recordSignIn } from '../use-cases/sign-in.js';
import { levelOf, type AuthenticationMethod } from '../factors/levels.js';
import { noFactors } from '../factors/summary.js';
import { shareScope, withholdScope } from '../oidc/grants.js';
import { requiredLevel } from '../oidc/authentication-level.js';
import type { SignInDoor } from './sign-in/door.js';
import { setupOfferRoutes } from './sign-in/setup-offer.js';
import { continueSignIn, passkeyChoice, signInStepRoutes } from './sign-in/steps.js';
import { issueCsrfToken } from './csrf.js';
import { PageError, tooManyAttemptsMessage } from './errors.js';
import { firstProblem } from './form-errors.js';
import { formBody, readForm } from './forms.js';
import { currentLanguage, useLanguage } from './language.js';
import { consentCounter } from './metrics.js';
import { pageTranslator, renderPage } from './render.js';
import type { SelfServiceDeps } from './self-service.js';
import { routerOptions } from './routing.js';
import { signInFromPage } from './sign-in/password.js';

type Interaction = Awaited<ReturnType<Provider['interactionDetails']>>;

// Shapes only; what the values must look like is checked with the messages users see.
const loginForm = z.object({
  email: z.string().max(1000).default(''),
  password: z.string().max(1000).default(''),
  _csrf: z.string().max(200).optional(),
});
const registerForm = loginForm.extend({ name: z.string().max(1000).default('') });
const registrationFields = z.object({
  email: z.string().trim().min(1).max(254).pipe(z.email()),
  password: passwordSchema,
  name: z
    .string()
    .trim()
    .min(1)
    .max(200)
    .refine((name) => !name.includes('\u0000')),
});
const csrfOnlyForm = z.object({ _csrf: z.string().max(200).optional() });
const consentForm = z.object({
  _csrf: z.string().max(200).optional(),
  // The optional items ticked: one value, or several.
  scope: z
    .union([z.string().max(100), z.array(z.string().max(100)).max(20)])
    .optional()
    .transform((value) => (value === undefined ? [] : Array.isArray(value) ? value : [value])),
});

/** The scopes a service may ask for but the person may leave out (idp clients --optional-scope). */
function optionalScopesOf(client: { [key: string]: unknown } | undefined): Set<string> {
  const scopes = client?.['optional_scopes'];
  return new Set(Array.isArray(scopes) ? scopes.filter((scope): scope is string => typeof scope === 'string') : []);
}

/**
 * What the consent page asks about: what the service asks for and has not been given (a
 * grant the person made earlier covers the rest), or everything it asks for when it asked
 * for the question again (prompt=consent).
 */
function scopesToAsk(details: Interaction): string[] {
  const requested = String(details.params['scope'] ?? 'openid').split(' ');
  const missing = (details.prompt.details as { missingOIDCScope?: string[] }).missingOIDCScope ?? [];
  if (details.prompt.reasons.includes('consent_prompt') || missing.length === 0) return requested;
  return requested.filter((scope) => missing.includes(scope));
}

/**
 * The hosted login, registration and consent pages. They talk to oidc-provider only through
 * interactionDetails and the Interaction it returns, as a separate login/consent app would.
 */
export function interactionRoutes(deps: SelfServiceDeps): Router {
  const { provider, db, throttle } = deps;
  const router = new Router({ ...routerOptions, prefix: '/interaction/:uid' });
  router.use(issueCsrfToken);

  async function loadInteraction(ctx: Context, expectedPrompt?: string) {
    const details = await provider.interactionDetails(ctx.req, ctx.res);
    if (details.uid !== ctx.params['uid']) throw new oidcErrors.SessionNotFound('interaction mismatch');
    const accountId = details.session?.accountId;
    const account = accountId ? await findAccountById(db, accountId) : undefined;
    useLanguage(ctx, { uiLocales: details.params['ui_locales'], accountLocale: account?.locale });
    // A page rendered by a form post switches language by reopening the interaction.
    ctx.state['returnPath'] = `/interaction/${details.uid}`;
    if (expectedPrompt && details.prompt.name !== expectedPrompt) throw new PageError('error.stepNotNeeded');
    const client = await provider.Client.find(String(details.params['client_id']));
    const clientName = client?.clientName ?? client?.clientId ?? pageTranslator(ctx)('service.fallbackName');
    return { details, client, clientId: client?.clientId ?? null, clientName };
  }

  /**
   * interactionResult's own steps, on the interaction this request loaded and checked at its
   * start: interactionResult would read it (and its session) again, a statement more for
   * every page that ends an interaction.
   */
  async function finish(ctx: Context, interaction: Interaction, result: InteractionResults, merge: boolean): Promise<void> {
    interaction.result = merge && !('error' in result) ? { ...interaction.lastSubmission, ...result } : result;
    await interaction.persist();
    ctx.status = 303;
    ctx.redirect(interaction.returnTo);
  }

  /** This interaction as a door of the sign-in steps (sign-in/). */
  function doorOf(loaded: Awaited<ReturnType<typeof loadInteraction>>): SignInDoor {
    const { details, client, clientId, clientName } = loaded;
    const base = `/interaction/${details.uid}`;
    return {
      name: `interaction:${details.uid}`,
      base,
      clientId,
      serviceName: clientName,
      required: requiredLevel({
        acrValues: details.params['acr_values'],
        clientRequiredAcr: client?.['require_acr'],
      }),
      restartUrl: base,
      finish: (ctx, signIn) =>
        finish(ctx, details, { login: { accountId: signIn.accountId, amr: signIn.amr, acr: levelOf(signIn.amr) } }, false),
      decline: (ctx) =>
        finish(
          ctx,
          details,
          {
            error: 'unmet_authentication_requirements',
            error_description: 'The user did not set up the sign-in method the service requires.',
          },
          false,
        ),
      restart: (ctx, message, status) => renderLogin(ctx, loaded, { error: message }, status),
    };
  }

  async function renderLogin(
    ctx: Context,
    loaded: Awaited<ReturnType<typeof loadInteraction>>,
    values: { email?: string; error?: string },
    status = 200,
  ) {
    const t = pageTranslator(ctx);
    const { clientName } = loaded;
    const base = `/interaction/${ctx.params['uid']}`;
    renderPage(
      ctx,
      'login',
      {
        title: 'login.title',
        lead: t('login.lead', { service: clientName }),
        action: `${base}/login`,
        registerUrl: `${base}/register`,
        forgotUrl: `/password/forgot?return=${encodeURIComponent(base)}`,
        cancelAction: `${base}/abort`,
        cancelLabel: t('login.cancel', { service: clientName }),
        passkeyAction: `${base}/passkey`,
        ...(await passkeyChoice(deps, doorOf(loaded))),
        email: values.email ?? '',
        error: values.error,
      },
      status,
    );
  }

  function renderRegister(
    ctx: Context,
    clientName: string,
    values: { email?: string; name?: string; error?: string; errorField?: string },
    status = 200,
  ) {
    ctx.state['returnPath'] = `/interaction/${ctx.params['uid']}/register`;
    renderPage(
      ctx,
      'register',
      {
        title: 'register.title',
        uid: ctx.params['uid'],
        lead: pageTranslator(ctx)('register.lead', { service: clientName }),
        email: values.email ?? '',
        name: values.name ?? '',
        error: values.error,
        errorField: values.errorField,
      },
      status,
    );
  }

  /**
   * Someone tried to register an address that has an account. The page says only that the
   * account could not be created; the owner gets a notice, limited per requesting IP and per
   * recipient, so it can neither flood their mailbox nor use up their own allowance.
   */
  async function tellOwnerOfRegistrationAttempt(ctx: Context, email: string): Promise<void> {
    const owner = await findAccountByEmail(db, email);
    if (!owner) return;
    await mailPerson(deps, {
      purpose: 'register_existing',
      recipient: { to: owner.email, accountId: owner.id, language: currentLanguage(ctx) },
      requester: mailRequester.ip(ctx.ip),
    });
  }

  /** Reasons for the login prompt that a session already signed in can meet by a further step alone. */
  const stepUpReasons = new Set(['acr_level']);

  router.get('/', async (ctx) => {
    const loaded = await loadInteraction(ctx);
    const { details, clientName } = loaded;
    if (details.prompt.name === 'login') {
      const session = details.session as { accountId?: string; amr?: AuthenticationMethod[] } | undefined;
      const account = session?.accountId ? await findAccountById(db, session.accountId) : undefined;
      if (account && details.prompt.reasons.every((reason) => stepUpReasons.has(reason))) {
        // Signed in, but below what the service asks: only the missing step, not the password again.
        await continueSignIn(ctx, deps, doorOf(loaded), { account, amr: session?.amr ?? ['pwd'] });
        return;
      }
      const hint = details.params['login_hint'];
      await renderLogin(ctx, loaded, { email: typeof hint === 'string' ? hint : '' });
      return;
    }
    if (details.prompt.name === 'consent') {
      const asked = scopesToAsk(details);
      const optional = optionalScopesOf(loaded.client as unknown as { [key: string]: unknown });
      const grant = details.grantId ? await provider.Grant.find(details.grantId) : undefined;
      const shared = new Set((grant?.getOIDCScope() ?? '').split(' '));
      renderPage(ctx, 'consent', {
        title: 'consent.title',
        uid: details.uid,
        clientName,
        disclosures: describeScopes(asked.filter((scope) => !optional.has(scope))),
        optional: describeScopes(asked.filter((scope) => optional.has(scope))).map((item) => ({ ...item, shared: shared.has(item.scope) })),
      });
      return;
    }
    throw new PageError('error.stepUnsupported');
  });

  router.post('/login', formBody, async (ctx) => {
    const loaded = await loadInteraction(ctx, 'login');
    const form = readForm(ctx, loginForm);
    const outcome = await signInFromPage(ctx, deps, { email: form.email, password: form.password, clientId: loaded.clientId });
    if (!outcome.ok) {
      await renderLogin(ctx, loaded, { email: form.email, error: outcome.message }, outcome.status);
      return;
    }
    await continueSignIn(ctx, deps, doorOf(loaded), { account: outcome.account, amr: ['pwd'], factors: outcome.factors });
  });

  const interactionDoor = async (ctx: Context) => doorOf(await loadInteraction(ctx, 'login'));
  signInStepRoutes(router, deps, '', interactionDoor);
  setupOfferRoutes(router, deps, '', interactionDoor);

  router.get('/register', async (ctx) => {
    const { clientName } = await loadInteraction(ctx, 'login');
    renderRegister(ctx, clientName, {});
  });

  router.post('/register', formBody, async (ctx) => {
    const loaded = await loadInteraction(ctx, 'login');
    const { clientName, clientId } = loaded;
    const form = readForm(ctx, registerForm);
    const t = pageTranslator(ctx);
    try {
      await throttle.consumeRegistration(ctx.ip);
    } catch (error) {
      if (!(error instanceof TooManyAttempts)) throw error;
      ctx.set('retry-after', String(error.retryAfterSeconds));
      renderRegister(ctx, clientName, { email: form.email, name: form.name, error: tooManyAttemptsMessage(t, error) }, 429);
      return;
    }
    const fields = registrationFields.safeParse(form);
    if (!fields.success) {
      const problem = firstProblem(t, fields.error);
      renderRegister(ctx, clientName, { email: form.email, name: form.name, error: problem.message, errorField: problem.field }, 400);
      return;
    }
    let account;
    try {
      account = await createAccount(db, fields.data);
    } catch (error) {
      if (!(error instanceof Conflict)) throw error;
      await tellOwnerOfRegistrationAttempt(ctx, fields.data.email);
      renderRegister(ctx, clientName, { email: form.email, name: form.name, error: t('register.error.notCreated') }, 400);
      return;
    }
    await recordAuditEvent(db, { event: 'account.created', outcome: 'success', actor: account.id, clientId, ip: ctx.ip });
    await recordSignIn(db, { accountId: account.id, clientId, ip: ctx.ip, userAgent: ctx.get('user-agent') || undefined, amr: ['pwd'] });
    // Usable at once for this sign-in; email_verified stays false until the link is opened.
    await mailLink(
      deps,
      'verify_email',
      { to: account.email, accountId: account.id, language: currentLanguage(ctx) },
      mailRequester.ip(ctx.ip),
    );
    // A service that asks for more than a password offers to set up a second factor now.
    await continueSignIn(ctx, deps, doorOf(loaded), { account, amr: ['pwd'], factors: noFactors });
  });

  router.post('/consent', formBody, async (ctx) => {
    const { details, clientId, client } = await loadInteraction(ctx, 'consent');
    const form = readForm(ctx, consentForm);
    const accountId = details.session?.accountId;
    if (!accountId) throw new oidcErrors.SessionNotFound('no session for this interaction');
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId, clientId: String(details.params['client_id']) });
    if (!grant) throw new oidcErrors.SessionNotFound('grant not found');
    const promptDetails = details.prompt.details as { missingOIDCScope?: string[]; missingOIDCClaims?: string[] };
    // The person's choice for each item asked: required ones are shared; an optional one only when ticked.
    const optional = optionalScopesOf(client as unknown as { [key: string]: unknown });
    const ticked = new Set(form.scope);
    const shared: string[] = [];
    const declined: string[] = [];
    for (const scope of scopesToAsk(details)) {
      if (optional.has(scope) && !ticked.has(scope)) {
        withholdScope(grant, scope);
        declined.push(scope);
      } else {
        shareScope(grant, scope);
        shared.push(scope);
      }
    }
    if (promptDetails.missingOIDCClaims) grant.addOIDCClaims(promptDetails.missingOIDCClaims);
    const grantId = await grant.save();
    consentCounter.inc({ outcome: 'allowed' });
    await recordAuditEvent(db, {
      event: 'consent',
      outcome: 'success',
      actor: accountId,
      clientId,
      ip: ctx.ip,
      details: { scopes: shared, declined },
    });
    await finish(ctx, details, { consent: details.grantId ? {} : { grantId } }, true);
  });

  router.post('/abort', formBody, async (ctx) => {
    const { details, clientId } = await loadInteraction(ctx);
    readForm(ctx, csrfOnlyForm);
    consentCounter.inc({ outcome: 'denied' });
    await recordAuditEvent(db, { event: 'consent', outcome: 'denied', actor: details.session?.accountId ?? null, clientId, ip: ctx.ip });
    await finish(ctx, details, { error: 'access_denied', error_description: 'The user declined the request.' }, false);
  });

  return router;
}
