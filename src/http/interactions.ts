import Router from '@koa/router';
import { bodyParser } from '@koa/bodyparser';
import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import { errors as oidcErrors, type InteractionResults } from 'oidc-provider';
import { z } from 'zod';
import { authenticate, createAccount } from '../accounts/store.js';
import { recordAuditEvent } from '../audit/log.js';
import { passwordSchema } from '../accounts/passwords.js';
import type { Database } from '../db/index.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { Conflict, InvalidInput, TooManyAttempts } from '../errors.js';
import type { Throttle } from '../security/throttle.js';
import { describeScopes } from '../accounts/claims.js';
import { assertCsrfToken, issueCsrfToken } from './csrf.js';
import { consentCounter, signInCounter } from './metrics.js';
import { renderPage } from './render.js';

const formBody = bodyParser({ enableTypes: ['form'], formLimit: '16kb', encoding: 'utf-8' });

// Shapes only; what the values must look like is checked with the messages users see.
const loginForm = z.object({
  email: z.string().max(1000).default(''),
  password: z.string().max(1000).default(''),
  _csrf: z.string().max(200).optional(),
});
const registerForm = loginForm.extend({ name: z.string().max(1000).default('') });
const registrationFields = z.object({
  email: z
    .string()
    .trim()
    .min(1, 'Enter your email address.')
    .max(254, 'That email address is too long.')
    .pipe(z.email({ message: 'Enter a valid email address.' })),
  password: passwordSchema,
  name: z.string().trim().min(1, 'Enter your name.').max(200, 'Use at most 200 characters for your name.'),
});
const csrfOnlyForm = z.object({ _csrf: z.string().max(200).optional() });

function readForm<T extends z.ZodType>(ctx: Context, schema: T): z.output<T> {
  const parsed = schema.safeParse(ctx.request.body ?? {});
  if (!parsed.success) throw new InvalidInput('The form was not filled in as expected. Reload the page and try again.');
  assertCsrfToken(ctx, (parsed.data as { _csrf?: string })._csrf);
  return parsed.data;
}

function clientDisplayName(client: { clientName?: string; clientId: string } | undefined): string {
  return client?.clientName ?? client?.clientId ?? 'the service';
}

/**
 * The hosted login, registration and consent pages. They talk to oidc-provider only through
 * interactionDetails and interactionResult, as a separate login/consent app would.
 */
export function interactionRoutes(provider: Provider, db: Database, throttle: Throttle): Router {
  const router = new Router({ prefix: '/interaction/:uid' });
  router.use(issueCsrfToken);

  async function loadInteraction(ctx: Context, expectedPrompt?: string) {
    const details = await provider.interactionDetails(ctx.req, ctx.res);
    if (details.uid !== ctx.params['uid']) throw new oidcErrors.SessionNotFound('interaction mismatch');
    if (expectedPrompt && details.prompt.name !== expectedPrompt) {
      throw new InvalidInput('This step is no longer needed. Return to the service and try again.');
    }
    const client = await provider.Client.find(String(details.params['client_id']));
    return { details, client, clientId: client?.clientId ?? null, clientName: clientDisplayName(client) };
  }

  async function finish(ctx: Context, result: InteractionResults, merge: boolean): Promise<void> {
    const redirectTo = await provider.interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission: merge });
    ctx.status = 303;
    ctx.redirect(redirectTo);
  }

  function renderLogin(ctx: Context, clientName: string, values: { email?: string; error?: string }, status = 200) {
    renderPage(
      ctx,
      'login',
      { title: 'Sign in', uid: ctx.params['uid'], clientName, email: values.email ?? '', error: values.error },
      status,
    );
  }

  function renderRegister(ctx: Context, clientName: string, values: { email?: string; name?: string; error?: string }, status = 200) {
    renderPage(
      ctx,
      'register',
      {
        title: 'Create your account',
        uid: ctx.params['uid'],
        clientName,
        email: values.email ?? '',
        name: values.name ?? '',
        error: values.error,
      },
      status,
    );
  }

  router.get('/', async (ctx) => {
    const { details, clientName } = await loadInteraction(ctx);
    if (details.prompt.name === 'login') {
      const hint = details.params['login_hint'];
      renderLogin(ctx, clientName, { email: typeof hint === 'string' ? hint : '' });
      return;
    }
    if (details.prompt.name === 'consent') {
      const requested = String(details.params['scope'] ?? 'openid').split(' ');
      renderPage(ctx, 'consent', { title: 'Share your information', uid: details.uid, clientName, disclosures: describeScopes(requested) });
      return;
    }
    throw new InvalidInput('This sign-in step is not supported.');
  });

  router.post('/login', formBody, async (ctx) => {
    const { clientName, clientId } = await loadInteraction(ctx, 'login');
    const form = readForm(ctx, loginForm);
    if (!form.email.trim() || !form.password) {
      renderLogin(ctx, clientName, { email: form.email, error: 'Enter your email address and password.' }, 400);
      return;
    }
    try {
      await throttle.assertSignInAllowed(form.email, ctx.ip);
    } catch (error) {
      if (!(error instanceof TooManyAttempts)) throw error;
      signInCounter.inc({ outcome: 'locked' });
      await recordAuditEvent(db, { event: 'sign_in.locked', outcome: 'denied', clientId, ip: ctx.ip });
      ctx.set('retry-after', String(error.retryAfterSeconds));
      renderLogin(ctx, clientName, { email: form.email, error: error.message }, 429);
      return;
    }
    const account = await authenticate(db, form.email, form.password);
    if (!account) {
      signInCounter.inc({ outcome: 'failure' });
      await recordAuditEvent(db, { event: 'sign_in', outcome: 'failure', clientId, ip: ctx.ip });
      const { delayMs } = await throttle.recordSignInFailure(form.email, ctx.ip);
      await sleep(delayMs);
      renderLogin(ctx, clientName, { email: form.email, error: 'The email address or password is incorrect.' }, 401);
      return;
    }
    await throttle.recordSignInSuccess(form.email);
    signInCounter.inc({ outcome: 'success' });
    await recordAuditEvent(db, { event: 'sign_in', outcome: 'success', actor: account.id, clientId, ip: ctx.ip });
    await finish(ctx, { login: { accountId: account.id, amr: ['pwd'] } }, false);
  });

  router.get('/register', async (ctx) => {
    const { clientName } = await loadInteraction(ctx, 'login');
    renderRegister(ctx, clientName, {});
  });

  router.post('/register', formBody, async (ctx) => {
    const { clientName, clientId } = await loadInteraction(ctx, 'login');
    const form = readForm(ctx, registerForm);
    try {
      await throttle.consumeRegistration(ctx.ip);
    } catch (error) {
      if (!(error instanceof TooManyAttempts)) throw error;
      ctx.set('retry-after', String(error.retryAfterSeconds));
      renderRegister(ctx, clientName, { email: form.email, name: form.name, error: error.message }, 429);
      return;
    }
    const fields = registrationFields.safeParse(form);
    if (!fields.success) {
      renderRegister(ctx, clientName, { email: form.email, name: form.name, error: fields.error.issues[0]?.message }, 400);
      return;
    }
    let accountId: string;
    try {
      accountId = (await createAccount(db, fields.data)).id;
      await recordAuditEvent(db, { event: 'account.created', outcome: 'success', actor: accountId, clientId, ip: ctx.ip });
    } catch (error) {
      if (!(error instanceof Conflict)) throw error;
      renderRegister(
        ctx,
        clientName,
        {
          email: form.email,
          name: form.name,
          error: 'We could not create an account with these details. If you already have an account, sign in instead.',
        },
        400,
      );
      return;
    }
    await finish(ctx, { login: { accountId, amr: ['pwd'] } }, false);
  });

  router.post('/consent', formBody, async (ctx) => {
    const { details, clientId } = await loadInteraction(ctx, 'consent');
    readForm(ctx, csrfOnlyForm);
    const accountId = details.session?.accountId;
    if (!accountId) throw new oidcErrors.SessionNotFound('no session for this interaction');
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId, clientId: String(details.params['client_id']) });
    if (!grant) throw new oidcErrors.SessionNotFound('grant not found');
    const promptDetails = details.prompt.details as { missingOIDCScope?: string[]; missingOIDCClaims?: string[] };
    if (promptDetails.missingOIDCScope) grant.addOIDCScope(promptDetails.missingOIDCScope.join(' '));
    if (promptDetails.missingOIDCClaims) grant.addOIDCClaims(promptDetails.missingOIDCClaims);
    const grantId = await grant.save();
    consentCounter.inc({ outcome: 'allowed' });
    await recordAuditEvent(db, {
      event: 'consent',
      outcome: 'success',
      actor: accountId,
      clientId,
      ip: ctx.ip,
      details: { scopes: promptDetails.missingOIDCScope ?? [] },
    });
    await finish(ctx, { consent: details.grantId ? {} : { grantId } }, true);
  });

  router.post('/abort', formBody, async (ctx) => {
    const { details, clientId } = await loadInteraction(ctx);
    readForm(ctx, csrfOnlyForm);
    consentCounter.inc({ outcome: 'denied' });
    await recordAuditEvent(db, { event: 'consent', outcome: 'denied', actor: details.session?.accountId ?? null, clientId, ip: ctx.ip });
    await finish(ctx, { error: 'access_denied', error_description: 'The user declined the request.' }, false);
  });

  return router;
}
