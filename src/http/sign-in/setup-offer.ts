import type Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import type { Account } from '../../accounts/store.js';
import { TooManyAttempts } from '../../errors.js';
import { acrLevels, levelOf, methodsOf, satisfies, type AuthenticationMethod } from '../../factors/levels.js';
import { extendPendingSignIn, finishPendingSignIn } from '../../factors/pending-sign-ins.js';
import { totpCodeSchema } from '../../factors/totp.js';
import { registrationResponseSchema, type RegistrationResponse } from '../../factors/webauthn.js';
import { addPasskey, authenticatorAppSetup, confirmAuthenticatorApp } from '../../use-cases/enroll-factor.js';
import { passkeysOffered } from '../../use-cases/factor-context.js';
import { tooManyAttemptsMessage } from '../errors.js';
import { formBody, readForm } from '../forms.js';
import { currentLanguage } from '../language.js';
import { pageTranslator, renderPage } from '../render.js';
import type { SelfServiceDeps } from '../self-service.js';
import {
  anyMethod,
  currentPending,
  finishPending,
  forgetPending,
  levelToReach,
  renderExpired,
  stepUrl,
  usableMethods,
  type SignInDoor,
} from './door.js';
import {
  defaultPasskeyName,
  parseCredential,
  passkeyCreationJson,
  passkeyNameSchema,
  passkeyRefusalMessages,
  qrCodeSvg,
} from './factor-forms.js';

const csrf = { _csrf: z.string().max(200).optional() };
const codeForm = z.object({ code: z.string().max(100).default(''), ...csrf });
const registrationForm = z.object({ credential: z.string().max(12_000).optional(), name: z.string().max(1000).optional(), ...csrf });
const csrfOnlyForm = z.object(csrf);

/**
 * When a service asks for more than the account can give (two factors of an account without
 * any, a passkey of an account without one), the person is offered to set a factor up there
 * and then, after their right password; declining ends the sign-in with
 * unmet_authentication_requirements. The offer exists only in that case: an account that can
 * reach the level with a factor it has must give that factor, not add a new one.
 */
export function setupOfferRoutes(
  router: Router,
  deps: SelfServiceDeps,
  prefix: string,
  doorOf: (ctx: Context) => Promise<SignInDoor>,
): void {
  /** The sign-in in progress, when this browser has one at this door. */
  async function inProgress(ctx: Context) {
    const door = await doorOf(ctx);
    const current = await currentPending(ctx, deps, door);
    return current && door.decline ? { door, ...current } : { door, expired: true as const };
  }

  /** The sign-in in progress, when it is one the offer is for: its account has no factor that reaches the level. */
  async function offered(ctx: Context) {
    const found = await inProgress(ctx);
    if ('expired' in found) return found;
    const { factors } = found;
    if (anyMethod(usableMethods(factors, levelToReach(found.door, factors), passkeysOffered(deps)))) {
      return { door: found.door, expired: true as const };
    }
    return found;
  }

  async function renderOffer(ctx: Context, door: SignInDoor, account: Account, extra: { error?: string } = {}, status = 200) {
    const t = pageTranslator(ctx);
    const passkeyOnly = door.required === acrLevels.phishingResistant;
    const service = door.serviceName ?? t('service.fallbackName');
    const passkeyOptions = await passkeyCreationJson(deps, account);
    ctx.state['returnPath'] = stepUrl(door, 'setup');
    renderPage(
      ctx,
      'factor-setup',
      {
        title: passkeyOnly ? 'setup.passkeyTitle' : 'setup.title',
        lead: t(passkeyOnly ? 'setup.passkeyLead' : 'setup.lead', { service }),
        authenticatorUrl: passkeyOnly ? undefined : stepUrl(door, 'setup/authenticator'),
        passkeyAction: stepUrl(door, 'setup/passkey'),
        passkeyOptions,
        passkeyName: defaultPasskeyName(ctx),
        declineAction: stepUrl(door, 'setup/decline'),
        declineLabel: t('setup.decline', { service }),
        scripts: passkeyOptions !== undefined,
        ...extra,
      },
      status,
    );
  }

  async function renderAuthenticatorSetup(ctx: Context, door: SignInDoor, account: Account, extra: { error?: string } = {}, status = 200) {
    const { secret, uri } = await authenticatorAppSetup(deps, account);
    ctx.state['returnPath'] = stepUrl(door, 'setup/authenticator');
    renderPage(
      ctx,
      'authenticator-setup',
      {
        title: 'authenticator.title',
        action: stepUrl(door, 'setup/authenticator'),
        secret,
        qrSvg: await qrCodeSvg(uri),
        backUrl: stepUrl(door, 'setup'),
        ...extra,
        errorField: extra.error ? 'code' : undefined,
      },
      status,
    );
  }

  /** After a factor was set up: its recovery codes first (when it was the first), else straight on. */
  async function afterSetup(
    ctx: Context,
    found: { door: SignInDoor; id: string; pending: { accountId: string; amr: string[] } },
    method: AuthenticationMethod,
    recoveryCodes: string[] | undefined,
  ) {
    const amr = methodsOf([...(found.pending.amr as AuthenticationMethod[]), method]);
    await extendPendingSignIn(deps.db, found.id, amr);
    if (recoveryCodes) {
      renderPage(ctx, 'recovery-codes', {
        title: 'recoveryCodes.title',
        codes: recoveryCodes,
        continueAction: stepUrl(found.door, 'setup/done'),
      });
      return;
    }
    await finishPending(ctx, deps, found.door, found, amr);
  }

  router.get(`${prefix}/setup`, async (ctx) => {
    const found = await offered(ctx);
    if ('expired' in found) return renderExpired(ctx, found.door);
    await renderOffer(ctx, found.door, found.account);
  });

  router.get(`${prefix}/setup/authenticator`, async (ctx) => {
    const found = await offered(ctx);
    if ('expired' in found || found.door.required === acrLevels.phishingResistant) return renderExpired(ctx, found.door);
    await renderAuthenticatorSetup(ctx, found.door, found.account);
  });

  router.post(`${prefix}/setup/authenticator`, formBody, async (ctx) => {
    const form = readForm(ctx, codeForm);
    const found = await offered(ctx);
    if ('expired' in found || found.door.required === acrLevels.phishingResistant) return renderExpired(ctx, found.door);
    const { door, account } = found;
    const t = pageTranslator(ctx);
    const code = totpCodeSchema.safeParse(form.code);
    if (!code.success) return renderAuthenticatorSetup(ctx, door, account, { error: t('secondStep.error.codeFormat') }, 400);
    const result = await confirmAuthenticatorApp(deps, { account, code: code.data, ip: ctx.ip, language: currentLanguage(ctx) });
    if (result.ok) return afterSetup(ctx, found, 'otp', result.recoveryCodes);
    if (result.reason === 'locked') {
      ctx.set('retry-after', String(result.retryAfterSeconds));
      const message = tooManyAttemptsMessage(t, new TooManyAttempts(result.retryAfterSeconds));
      return renderAuthenticatorSetup(ctx, door, account, { error: message }, 429);
    }
    return renderAuthenticatorSetup(ctx, door, account, { error: t(`authenticator.error.${result.reason}`) }, 400);
  });

  router.post(`${prefix}/setup/passkey`, formBody, async (ctx) => {
    const form = readForm(ctx, registrationForm);
    const found = await offered(ctx);
    if ('expired' in found) return renderExpired(ctx, found.door);
    const { door, account } = found;
    const t = pageTranslator(ctx);
    const response = parseCredential<RegistrationResponse>(registrationResponseSchema, form.credential);
    const name = passkeyNameSchema.safeParse(form.name ?? '');
    const result = response
      ? await addPasskey(deps, {
          account,
          response,
          name: name.success ? name.data : defaultPasskeyName(ctx),
          ip: ctx.ip,
          language: currentLanguage(ctx),
        })
      : ({ ok: false, reason: 'malformed' } as const);
    if (result.ok) return afterSetup(ctx, found, result.method, result.recoveryCodes);
    const message = t(result.reason === 'duplicate' ? 'passkey.error.duplicate' : passkeyRefusalMessages[result.reason]);
    return renderOffer(ctx, door, account, { error: message }, 400);
  });

  // After the recovery codes: on, once the factor set up here brought the sign-in to its level.
  router.post(`${prefix}/setup/done`, formBody, async (ctx) => {
    readForm(ctx, csrfOnlyForm);
    const found = await inProgress(ctx);
    if ('expired' in found) return renderExpired(ctx, found.door);
    const amr = found.pending.amr as AuthenticationMethod[];
    if (!satisfies(levelOf(amr), levelToReach(found.door, found.factors))) {
      return renderExpired(ctx, found.door);
    }
    await finishPending(ctx, deps, found.door, found, amr);
  });

  router.post(`${prefix}/setup/decline`, formBody, async (ctx) => {
    readForm(ctx, csrfOnlyForm);
    const door = await doorOf(ctx);
    const current = await currentPending(ctx, deps, door);
    if (current) await finishPendingSignIn(deps.db, current.id);
    forgetPending(ctx);
    if (!door.decline) return renderExpired(ctx, door);
    await door.decline(ctx);
  });
}
