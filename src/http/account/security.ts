import type Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import { accountSessionHandle, endAccountSessionByHandle, listAccountSessions } from '../../accounts/account-sessions.js';
import { sessionDevicesOf } from '../../accounts/session-devices.js';
import type { Account } from '../../accounts/store.js';
import { TooManyAttempts } from '../../errors.js';
import { factorsOf } from '../../factors/summary.js';
import { totpCodeSchema } from '../../factors/totp.js';
import { registrationResponseSchema } from '../../factors/webauthn.js';
import { listSessions, sessionUidByCookie } from '../../oidc/artefacts.js';
import { endOtherSessions, endSession } from '../../use-cases/end-sessions.js';
import {
  addPasskey,
  authenticatorAppSetup,
  confirmAuthenticatorApp,
  regenerateRecoveryCodes,
  renameOwnPasskey,
} from '../../use-cases/enroll-factor.js';
import { removeAuthenticatorApp, removePasskey, type FactorRemoval } from '../../use-cases/remove-factor.js';
import { NotFound } from '../../errors.js';
import { tooManyAttemptsMessage } from '../errors.js';
import { formBody, readForm } from '../forms.js';
import { currentLanguage } from '../language.js';
import { pageTranslator } from '../render.js';
import type { SelfServiceDeps } from '../self-service.js';
import { defaultPasskeyName, passkeyCreationJson, passkeyNameSchema, qrCodeSvg } from '../sign-in/factor-forms.js';
import { signedIn } from './session.js';
import { doneRedirect, renderAccountPage } from './view.js';

const csrf = { _csrf: z.string().max(200).optional() };
// Credential ids are base64url; anything else (a NUL byte, which Postgres text refuses) is not one.
const credentialIdField = z
  .string()
  .max(1400)
  .regex(/^[\w-]*$/);
const addPasskeyForm = z.object({ credential: z.string().max(12_000).optional(), name: z.string().max(1000).optional(), ...csrf });
const renamePasskeyForm = z.object({ passkey: credentialIdField, name: z.string().max(1000).default(''), ...csrf });
const removePasskeyForm = z.object({ passkey: credentialIdField, password: z.string().max(1000).default(''), ...csrf });
const removeAuthenticatorForm = z.object({ password: z.string().max(1000).default(''), ...csrf });
const codeForm = z.object({ code: z.string().max(100).default(''), ...csrf });
const endSessionForm = z.object({ session: z.string().max(200).optional(), account_session: z.string().max(200).optional(), ...csrf });
const csrfOnlyForm = z.object(csrf);

/**
 * The Security page: passkeys, the authenticator app, recovery codes, and every session the
 * account is signed in with (sign out one, or all but this browser). Every change goes
 * through a workflow that audits it and mails the person.
 */
export function securityRoutes(router: Router, deps: SelfServiceDeps): void {
  /** This browser's sign-in session (the provider's session cookie), to mark it and to keep it. */
  async function thisBrowsersSession(ctx: Context): Promise<string | undefined> {
    const cookie = ctx.cookies.get(deps.provider.cookieName('session'), { signed: true });
    return cookie ? sessionUidByCookie(deps.db, cookie) : undefined;
  }

  async function serviceNames(clientIds: string[]): Promise<Map<string, string>> {
    const names = new Map<string, string>();
    for (const clientId of new Set(clientIds)) {
      const client = await deps.provider.Client.find(clientId);
      names.set(clientId, client?.clientName ?? clientId);
    }
    return names;
  }

  async function renderSecurity(ctx: Context, extra: { error?: string; errorField?: string; errorFor?: string } = {}, status = 200) {
    const { account, sessionId } = signedIn(ctx);
    const t = pageTranslator(ctx);
    const known = (value: string) => (value !== 'unknown' ? value : t('activity.unknown'));
    const device = (facts: { browser: string; os: string } | undefined) =>
      facts ? t('activity.deviceValue', { browser: known(facts.browser), os: known(facts.os) }) : t('activity.unknown');
    const [factors, sessions, devices, accountSessions, currentUid] = await Promise.all([
      factorsOf(deps.db, account.id),
      listSessions(deps.db, account.id),
      sessionDevicesOf(deps.db, account.id),
      listAccountSessions(deps.db, account.id),
      thisBrowsersSession(ctx),
    ]);
    const passkeyOptions = await passkeyCreationJson(deps, account);
    const names = await serviceNames(sessions.flatMap((session) => session.services.map((service) => service.clientId)));
    const factorCount = factors.passkeys.length + (factors.totp ? 1 : 0);
    const thisAccountSession = accountSessionHandle(sessionId);
    renderAccountPage(
      ctx,
      'account/security',
      'security',
      {
        title: 'security.title',
        passkeys: factors.passkeys.map((passkey) => ({ ...passkey, synced: passkey.deviceType === 'multiDevice' })),
        totp: factors.totp,
        recoveryCodes: factors.recoveryCodes,
        lastFactor: factorCount === 1,
        passkeyOptions,
        passkeyName: defaultPasskeyName(ctx),
        sessions: sessions.map((session) => {
          const facts = devices.get(session.uid);
          return {
            uid: session.uid,
            device: device(facts),
            ipPrefix: facts?.ipPrefix ?? null,
            firstSeenAt: facts?.firstSeenAt ?? session.signedInAt,
            lastSeenAt: facts?.lastSeenAt ?? session.signedInAt,
            services: session.services.map((service) => names.get(service.clientId) ?? service.clientId),
            current: session.uid === currentUid,
          };
        }),
        accountSessions: accountSessions.map((session) => ({
          handle: session.handle,
          device: device(session),
          ipPrefix: session.ipPrefix,
          firstSeenAt: session.createdAt,
          lastSeenAt: session.lastSeenAt,
          current: session.handle === thisAccountSession,
        })),
        scripts: passkeyOptions !== undefined,
        ...extra,
      },
      status,
    );
  }

  function renderCodes(ctx: Context, codes: string[]) {
    renderAccountPage(ctx, 'account/recovery-codes', 'security', { title: 'recoveryCodes.title', codes });
  }

  async function renderAuthenticatorSetup(ctx: Context, account: Account, extra: { error?: string } = {}, status = 200) {
    const { secret, uri } = await authenticatorAppSetup(deps, account);
    renderAccountPage(
      ctx,
      'account/authenticator',
      'security',
      {
        title: 'authenticator.title',
        action: '/account/security/authenticator',
        secret,
        qrSvg: await qrCodeSvg(uri),
        ...extra,
        errorField: extra.error ? 'code' : undefined,
      },
      status,
    );
  }

  /** The page after a refused removal: what was wrong, next to the form it came from. */
  function removalProblem(ctx: Context, result: Exclude<FactorRemoval, { ok: true }>, errorFor: string) {
    const t = pageTranslator(ctx);
    switch (result.reason) {
      case 'not-found':
        throw new NotFound('no such factor');
      case 'locked':
        ctx.set('retry-after', String(result.retryAfterSeconds));
        return renderSecurity(ctx, { error: tooManyAttemptsMessage(t, new TooManyAttempts(result.retryAfterSeconds)), errorFor }, 429);
      case 'password-needed':
        return renderSecurity(ctx, { error: t('security.error.passwordNeeded'), errorField: 'password', errorFor }, 400);
      case 'password-incorrect':
        return renderSecurity(ctx, { error: t('password.error.current'), errorField: 'password', errorFor }, 400);
    }
  }

  router.get('/security', (ctx) => renderSecurity(ctx));

  router.post('/security/passkeys', formBody, async (ctx) => {
    const form = readForm(ctx, addPasskeyForm);
    const { account } = signedIn(ctx);
    const t = pageTranslator(ctx);
    let response;
    try {
      response = registrationResponseSchema.safeParse(JSON.parse(form.credential ?? ''));
    } catch {
      response = undefined;
    }
    if (!response?.success) return renderSecurity(ctx, { error: t('passkey.error.malformed'), errorFor: 'add-passkey' }, 400);
    const name = passkeyNameSchema.safeParse(form.name ?? '');
    const result = await addPasskey(deps, {
      account,
      response: response.data,
      name: name.success ? name.data : defaultPasskeyName(ctx),
      ip: ctx.ip,
      language: currentLanguage(ctx),
    });
    if (!result.ok) {
      const key = result.reason === 'duplicate' ? 'passkey.error.duplicate' : (`passkey.error.${result.reason}` as const);
      return renderSecurity(ctx, { error: t(key), errorFor: 'add-passkey' }, 400);
    }
    if (result.recoveryCodes) return renderCodes(ctx, result.recoveryCodes);
    doneRedirect(ctx, '/account/security', 'passkey-added');
  });

  router.post('/security/passkeys/rename', formBody, async (ctx) => {
    const form = readForm(ctx, renamePasskeyForm);
    const { account } = signedIn(ctx);
    const name = passkeyNameSchema.safeParse(form.name);
    if (!name.success) {
      return renderSecurity(ctx, { error: pageTranslator(ctx)('passkey.error.name'), errorFor: `rename:${form.passkey}` }, 400);
    }
    if (!(await renameOwnPasskey(deps, { account, credentialId: form.passkey, name: name.data, ip: ctx.ip }))) {
      throw new NotFound('no such passkey');
    }
    doneRedirect(ctx, '/account/security', 'passkey-renamed');
  });

  router.post('/security/passkeys/remove', formBody, async (ctx) => {
    const form = readForm(ctx, removePasskeyForm);
    const { account } = signedIn(ctx);
    const result = await removePasskey(deps, {
      account,
      credentialId: form.passkey,
      password: form.password,
      ip: ctx.ip,
      language: currentLanguage(ctx),
    });
    if (!result.ok) return removalProblem(ctx, result, `remove:${form.passkey}`);
    doneRedirect(ctx, '/account/security', 'passkey-removed');
  });

  router.get('/security/authenticator', async (ctx) => {
    const { account } = signedIn(ctx);
    if ((await factorsOf(deps.db, account.id)).totp) {
      ctx.status = 303;
      return ctx.redirect('/account/security');
    }
    await renderAuthenticatorSetup(ctx, account);
  });

  router.post('/security/authenticator', formBody, async (ctx) => {
    const form = readForm(ctx, codeForm);
    const { account } = signedIn(ctx);
    const t = pageTranslator(ctx);
    const code = totpCodeSchema.safeParse(form.code);
    if (!code.success) return renderAuthenticatorSetup(ctx, account, { error: t('secondStep.error.codeFormat') }, 400);
    const result = await confirmAuthenticatorApp(deps, { account, code: code.data, ip: ctx.ip, language: currentLanguage(ctx) });
    if (!result.ok) {
      if (result.reason === 'locked') {
        ctx.set('retry-after', String(result.retryAfterSeconds));
        return renderAuthenticatorSetup(
          ctx,
          account,
          { error: tooManyAttemptsMessage(t, new TooManyAttempts(result.retryAfterSeconds)) },
          429,
        );
      }
      return renderAuthenticatorSetup(ctx, account, { error: t(`authenticator.error.${result.reason}`) }, 400);
    }
    if (result.recoveryCodes) return renderCodes(ctx, result.recoveryCodes);
    doneRedirect(ctx, '/account/security', 'authenticator-added');
  });

  router.post('/security/authenticator/remove', formBody, async (ctx) => {
    const form = readForm(ctx, removeAuthenticatorForm);
    const { account } = signedIn(ctx);
    const result = await removeAuthenticatorApp(deps, { account, password: form.password, ip: ctx.ip, language: currentLanguage(ctx) });
    if (!result.ok) return removalProblem(ctx, result, 'remove-authenticator');
    doneRedirect(ctx, '/account/security', 'authenticator-removed');
  });

  router.post('/security/recovery-codes', formBody, async (ctx) => {
    readForm(ctx, csrfOnlyForm);
    const { account } = signedIn(ctx);
    const codes = await regenerateRecoveryCodes(deps, { account, ip: ctx.ip, language: currentLanguage(ctx) });
    if (!codes) return renderSecurity(ctx, { error: pageTranslator(ctx)('security.error.noFactor'), errorFor: 'recovery-codes' }, 400);
    renderCodes(ctx, codes);
  });

  router.post('/security/sessions/end', formBody, async (ctx) => {
    const form = readForm(ctx, endSessionForm);
    const { account } = signedIn(ctx);
    if (form.session) {
      await endSession(deps, { uid: form.session, accountId: account.id, actor: { kind: 'self', ip: ctx.ip } });
    } else if (!form.account_session || !(await endAccountSessionByHandle(deps.db, account.id, form.account_session))) {
      throw new NotFound('no such session');
    }
    doneRedirect(ctx, '/account/security', 'session-ended');
  });

  router.post('/security/sessions/end-others', formBody, async (ctx) => {
    readForm(ctx, csrfOnlyForm);
    const { account, sessionId } = signedIn(ctx);
    await endOtherSessions(deps, {
      accountId: account.id,
      actor: { kind: 'self', ip: ctx.ip },
      keepSessionUid: await thisBrowsersSession(ctx),
      keepAccountSession: sessionId,
    });
    doneRedirect(ctx, '/account/security', 'other-sessions-ended');
  });
}
