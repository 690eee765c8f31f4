import type Router from '@koa/router';
import type { Context } from 'koa';
import QRCode from 'qrcode';
import { z } from 'zod';
import { findAccountById, type Account } from '../accounts/store.js';
import { TooManyAttempts } from '../errors.js';
import { levelOf, methodsOf, satisfies, acrLevels, type AcrLevel, type AuthenticationMethod } from '../factors/levels.js';
import {
  extendPendingSignIn,
  findPendingSignIn,
  finishPendingSignIn,
  startPendingSignIn,
  type PendingSignIn,
} from '../factors/pending-sign-ins.js';
import { factorsOf, type Factors } from '../factors/summary.js';
import { recoveryCodeSchema } from '../factors/recovery-codes.js';
import { totpCodeSchema } from '../factors/totp.js';
import {
  authenticationResponseSchema,
  registrationResponseSchema,
  type AuthenticationResponse,
  type RegistrationResponse,
} from '../factors/webauthn.js';
import type { PlainKey } from '../i18n/catalogue.js';
import { addPasskey, authenticatorAppSetup, confirmAuthenticatorApp, passkeyCreationOptions } from '../use-cases/enroll-factor.js';
import { passkeysOffered } from '../use-cases/factor-context.js';
import { passkeyRequestOptions, signInWithPasskey, verifySecondStep, type PasskeyRefusal } from '../use-cases/second-step.js';
import { describeUserAgent } from '../security/user-agent.js';
import { tooManyAttemptsMessage } from './errors.js';
import { formBody, readForm } from './forms.js';
import { currentLanguage } from './language.js';
import { pageTranslator, renderPage } from './render.js';
import type { SelfServiceDeps } from './self-service.js';

/**
 * The steps of a sign-in after (or instead of) the password, written once for both doors
 * that sign people in: a service's sign-in (an interaction) and the account pages. A door
 * says where its steps live, what level the sign-in must reach, and how a finished sign-in
 * is handed over; this module runs the passkey sign-in, the second step and, when the
 * account cannot reach the level asked for, the offer to set up a factor there and then.
 */
export interface SignInDoor {
  /** What challenges and pending sign-ins are bound to: `interaction:<uid>` or `account`. */
  name: string;
  /** Where this door's step routes live. */
  base: string;
  /** A query string every step URL keeps (the account pages' destination after sign-in). */
  carry?: string;
  clientId: string | null;
  /** What the service asks for (undefined: any complete sign-in). */
  required: AcrLevel | undefined;
  /** The service's name, for pages that say who asks. */
  serviceName?: string;
  /** Hands a finished sign-in over (a 303 onwards). */
  finish(ctx: Context, signIn: { accountId: string; amr: AuthenticationMethod[] }): Promise<void>;
  /** Ends the sign-in unfinished because the level could not be reached (interactions only). */
  decline?(ctx: Context): Promise<void>;
  /** Where to begin again when the sign-in in progress expired. */
  restartUrl: string;
  /** Shows the first step again with a message (a passkey sign-in that failed). */
  restart(ctx: Context, message: string, status: number): Promise<void>;
}

/** The URL of one of a door's steps. */
const stepUrl = (door: SignInDoor, step: string) => `${door.base}/${step}${door.carry ?? ''}`;

const PENDING_COOKIE = 'idp.pending';
const pendingCookieOptions = (ctx: Context) =>
  ({ httpOnly: true, sameSite: 'lax', signed: true, secure: ctx.secure, path: '/', overwrite: true, maxAge: 600_000 }) as const;

const passkeyRefusalMessages: Record<PasskeyRefusal | 'malformed', PlainKey> = {
  invalid: 'passkey.error.invalid',
  expired: 'passkey.error.expired',
  replayed: 'passkey.error.replayed',
  malformed: 'passkey.error.malformed',
};

/** Reads a posted WebAuthn response: JSON of the expected shape, or undefined. */
function parseCredential<T>(schema: z.ZodType<T>, text: string | undefined): T | undefined {
  if (!text) return undefined;
  try {
    const parsed = schema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/** What a door must reach once the account is known: the service's level, and two factors for an account that has them. */
function levelToReach(door: SignInDoor, factors: Pick<Factors, 'passkeys' | 'totp'>): AcrLevel {
  const own = factors.passkeys.length > 0 || factors.totp ? acrLevels.twoFactors : acrLevels.oneFactor;
  return door.required && satisfies(door.required, own) ? door.required : own;
}

/** The second-step methods that can reach `level` for this account. */
function usableMethods(factors: Factors, level: AcrLevel, passkeys = true) {
  const passkey = passkeys && factors.passkeys.length > 0;
  if (level === acrLevels.phishingResistant) return { passkey, totp: false, recovery: false };
  return { passkey, totp: factors.totp !== undefined, recovery: factors.recoveryCodes.unused > 0 };
}

const anyMethod = (methods: ReturnType<typeof usableMethods>) => methods.passkey || methods.totp || methods.recovery;

/** The pending sign-in of this browser at this door, with its account. */
async function currentPending(ctx: Context, deps: SelfServiceDeps, door: SignInDoor) {
  const id = ctx.cookies.get(PENDING_COOKIE, { signed: true });
  const pending = id ? await findPendingSignIn(deps.db, id, door.name) : undefined;
  const account = pending ? await findAccountById(deps.db, pending.accountId) : undefined;
  return pending && account && id ? { id, pending, account } : undefined;
}

function forgetPending(ctx: Context): void {
  ctx.cookies.set(PENDING_COOKIE, null, pendingCookieOptions(ctx));
}

/**
 * Where a sign-in goes once its account is known by a first step (a right password, or the
 * session a service wants stepped up): done when it already reaches what is needed; else
 * the second step when the account has a factor that gets there; else the offer to set
 * one up (at a service) — each through a pending sign-in this browser holds.
 */
export async function continueSignIn(
  ctx: Context,
  deps: SelfServiceDeps,
  door: SignInDoor,
  signIn: { account: Account; amr: AuthenticationMethod[] },
): Promise<void> {
  const factors = await factorsOf(deps.db, signIn.account.id);
  const level = levelToReach(door, factors);
  if (satisfies(levelOf(signIn.amr), level)) return door.finish(ctx, { accountId: signIn.account.id, amr: signIn.amr });
  const id = await startPendingSignIn(deps.db, { accountId: signIn.account.id, amr: signIn.amr, door: door.name });
  ctx.cookies.set(PENDING_COOKIE, id, pendingCookieOptions(ctx));
  ctx.status = 303;
  ctx.redirect(anyMethod(usableMethods(factors, level, passkeysOffered(deps))) ? stepUrl(door, 'second-step') : stepUrl(door, 'setup'));
}

/** The passkey part of a first-step page: options for a discoverable sign-in at this door (none when passkeys are off). */
async function passkeySignInOptions(deps: SelfServiceDeps, door: SignInDoor): Promise<string | undefined> {
  if (!passkeysOffered(deps)) return undefined;
  return JSON.stringify(await passkeyRequestOptions(deps, { door: door.name }));
}

/** The passkey choice of a first-step page: its options, and the scripts that use them (neither when passkeys are off). */
export async function passkeyChoice(deps: SelfServiceDeps, door: SignInDoor): Promise<{ passkeyOptions?: string; scripts: boolean }> {
  const passkeyOptions = await passkeySignInOptions(deps, door);
  return { passkeyOptions, scripts: passkeyOptions !== undefined };
}

/** What a page needs to offer adding a passkey (none when passkeys are off). */
export async function passkeyCreationJson(deps: SelfServiceDeps, account: Account): Promise<string | undefined> {
  if (!passkeysOffered(deps)) return undefined;
  return JSON.stringify(await passkeyCreationOptions(deps, account));
}

const secondStepForm = z.object({
  code: z.string().max(100).optional(),
  recovery_code: z.string().max(100).optional(),
  credential: z.string().max(12_000).optional(),
  _csrf: z.string().max(200).optional(),
});
const passkeyForm = z.object({ credential: z.string().max(12_000).optional(), _csrf: z.string().max(200).optional() });
const setupCodeForm = z.object({ code: z.string().max(100).default(''), _csrf: z.string().max(200).optional() });
const registrationForm = z.object({
  credential: z.string().max(12_000).optional(),
  name: z.string().max(1000).optional(),
  _csrf: z.string().max(200).optional(),
});
const csrfOnlyForm = z.object({ _csrf: z.string().max(200).optional() });

/** A passkey's name as people give it: trimmed, at most 60 characters, no control characters. */
export const passkeyNameSchema = z
  .string()
  .transform((name) => name.replace(/\p{Cc}/gu, '').trim())
  .pipe(z.string().min(1).max(60));

/** A name for a new passkey when the person gave none: the browser and system it was made on. */
export function defaultPasskeyName(ctx: Context): string {
  const { browser, os } = describeUserAgent(ctx.get('user-agent') || undefined);
  const t = pageTranslator(ctx);
  return browser === 'unknown' ? t('passkey.defaultName') : t('activity.deviceValue', { browser, os: os === 'unknown' ? '?' : os });
}

/** The QR code of an otpauth:// URI, as inline SVG (no script, no request of its own). */
export function qrCodeSvg(uri: string): Promise<string> {
  return QRCode.toString(uri, { type: 'svg', errorCorrectionLevel: 'M', margin: 2 });
}

/**
 * The step routes of a door, under `door.base`: passkey sign-in, the second step, and (when
 * the door can decline) the offer to set up a factor.
 */
export function signInStepRoutes(
  router: Router,
  deps: SelfServiceDeps,
  paths: { prefix: string },
  doorOf: (ctx: Context) => Promise<SignInDoor>,
): void {
  const { prefix } = paths;

  async function renderSecondStep(
    ctx: Context,
    door: SignInDoor,
    account: Account,
    extra: { error?: string; errorField?: string } = {},
    status = 200,
  ) {
    const factors = await factorsOf(deps.db, account.id);
    const methods = usableMethods(factors, levelToReach(door, factors), passkeysOffered(deps));
    ctx.state['returnPath'] = stepUrl(door, 'second-step');
    renderPage(
      ctx,
      'second-step',
      {
        title: 'secondStep.title',
        action: stepUrl(door, 'second-step'),
        methods,
        passkeyOptions: methods.passkey ? JSON.stringify(await passkeyRequestOptions(deps, { door: door.name, account })) : undefined,
        restartUrl: door.restartUrl,
        scripts: methods.passkey,
        ...extra,
      },
      status,
    );
  }

  /** The page to show when the sign-in in progress is gone (expired, finished in another tab). */
  function renderExpired(ctx: Context, door: SignInDoor) {
    const t = pageTranslator(ctx);
    forgetPending(ctx);
    renderPage(
      ctx,
      'notice',
      {
        title: 'secondStep.expired.title',
        heading: t('secondStep.expired.title'),
        lines: [t('secondStep.expired.body')],
        tone: 'error',
        next: { href: door.restartUrl, label: t('secondStep.expired.restart') },
      },
      400,
    );
  }

  /** Finishes the pending sign-in exactly once (a double submit loses the race and sees the expired page). */
  async function finishPending(ctx: Context, door: SignInDoor, id: string, pending: PendingSignIn, amr: AuthenticationMethod[]) {
    if (!(await finishPendingSignIn(deps.db, id))) return renderExpired(ctx, door);
    forgetPending(ctx);
    await door.finish(ctx, { accountId: pending.accountId, amr });
  }

  router.post(`${prefix}/passkey`, formBody, async (ctx) => {
    const door = await doorOf(ctx);
    const form = readForm(ctx, passkeyForm);
    const t = pageTranslator(ctx);
    const response = parseCredential<AuthenticationResponse>(authenticationResponseSchema, form.credential);
    const result = response
      ? await signInWithPasskey(deps, {
          response,
          door: door.name,
          clientId: door.clientId,
          ip: ctx.ip,
          userAgent: ctx.get('user-agent') || undefined,
        })
      : ({ ok: false, reason: 'malformed' } as const);
    if (!result.ok) return door.restart(ctx, t(passkeyRefusalMessages[result.reason]), 400);
    await continueSignIn(ctx, deps, door, { account: result.account, amr: result.amr });
  });

  router.get(`${prefix}/second-step`, async (ctx) => {
    const door = await doorOf(ctx);
    const current = await currentPending(ctx, deps, door);
    if (!current) return renderExpired(ctx, door);
    await renderSecondStep(ctx, door, current.account);
  });

  router.post(`${prefix}/second-step`, formBody, async (ctx) => {
    const door = await doorOf(ctx);
    const form = readForm(ctx, secondStepForm);
    const current = await currentPending(ctx, deps, door);
    if (!current) return renderExpired(ctx, door);
    const t = pageTranslator(ctx);
    const { account, pending, id } = current;
    let answer;
    if (form.credential) {
      const response = parseCredential<AuthenticationResponse>(authenticationResponseSchema, form.credential);
      if (!response) return renderSecondStep(ctx, door, account, { error: t('passkey.error.malformed') }, 400);
      answer = { kind: 'passkey', response } as const;
    } else if (form.recovery_code) {
      const code = recoveryCodeSchema.safeParse(form.recovery_code);
      if (!code.success)
        return renderSecondStep(ctx, door, account, { error: t('secondStep.error.recoveryFormat'), errorField: 'recovery_code' }, 400);
      answer = { kind: 'recovery', code: code.data } as const;
    } else {
      const code = totpCodeSchema.safeParse(form.code ?? '');
      if (!code.success) return renderSecondStep(ctx, door, account, { error: t('secondStep.error.codeFormat'), errorField: 'code' }, 400);
      answer = { kind: 'totp', code: code.data } as const;
    }
    const factors = await factorsOf(deps.db, account.id);
    const methods = usableMethods(factors, levelToReach(door, factors), passkeysOffered(deps));
    const allowed = answer.kind === 'passkey' ? methods.passkey : answer.kind === 'totp' ? methods.totp : methods.recovery;
    if (!allowed) return renderSecondStep(ctx, door, account, { error: t('secondStep.error.method') }, 400);
    const result = await verifySecondStep(deps, {
      account,
      answer,
      amr: pending.amr,
      door: door.name,
      clientId: door.clientId,
      ip: ctx.ip,
      userAgent: ctx.get('user-agent') || undefined,
      language: currentLanguage(ctx),
    });
    if (!result.ok) {
      if (result.reason === 'locked') {
        ctx.set('retry-after', String(result.retryAfterSeconds));
        return renderSecondStep(
          ctx,
          door,
          account,
          { error: tooManyAttemptsMessage(t, new TooManyAttempts(result.retryAfterSeconds)) },
          429,
        );
      }
      if (result.reason === 'incorrect') {
        const field = answer.kind === 'recovery' ? 'recovery_code' : 'code';
        const message = answer.kind === 'recovery' ? t('secondStep.error.recovery') : t('secondStep.error.code');
        return renderSecondStep(ctx, door, account, { error: message, errorField: field }, 401);
      }
      return renderSecondStep(ctx, door, account, { error: t(passkeyRefusalMessages[result.reason]) }, 400);
    }
    await finishPending(ctx, door, id, pending, methodsOf([...(pending.amr as AuthenticationMethod[]), result.method]));
  });

  // --- Setting a factor up when the service asks for more than the account can give ---

  async function setupContext(ctx: Context) {
    const door = await doorOf(ctx);
    if (!door.decline) return undefined;
    const current = await currentPending(ctx, deps, door);
    return current ? { door, ...current } : undefined;
  }

  function renderRecoveryCodes(ctx: Context, door: SignInDoor, codes: string[]) {
    renderPage(ctx, 'recovery-codes', { title: 'recoveryCodes.title', codes, continueAction: stepUrl(door, 'setup/done') });
  }

  async function renderSetup(ctx: Context, door: SignInDoor, account: Account, extra: { error?: string } = {}, status = 200) {
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

  router.get(`${prefix}/setup`, async (ctx) => {
    const setup = await setupContext(ctx);
    if (!setup) return renderExpired(ctx, await doorOf(ctx));
    await renderSetup(ctx, setup.door, setup.account);
  });

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

  router.get(`${prefix}/setup/authenticator`, async (ctx) => {
    const setup = await setupContext(ctx);
    if (!setup) return renderExpired(ctx, await doorOf(ctx));
    await renderAuthenticatorSetup(ctx, setup.door, setup.account);
  });

  router.post(`${prefix}/setup/authenticator`, formBody, async (ctx) => {
    const form = readForm(ctx, setupCodeForm);
    const setup = await setupContext(ctx);
    if (!setup) return renderExpired(ctx, await doorOf(ctx));
    const { door, account, id, pending } = setup;
    const t = pageTranslator(ctx);
    const code = totpCodeSchema.safeParse(form.code);
    if (!code.success) return renderAuthenticatorSetup(ctx, door, account, { error: t('secondStep.error.codeFormat') }, 400);
    const result = await confirmAuthenticatorApp(deps, { account, code: code.data, ip: ctx.ip, language: currentLanguage(ctx) });
    if (!result.ok) {
      if (result.reason === 'locked') {
        ctx.set('retry-after', String(result.retryAfterSeconds));
        return renderAuthenticatorSetup(
          ctx,
          door,
          account,
          { error: tooManyAttemptsMessage(t, new TooManyAttempts(result.retryAfterSeconds)) },
          429,
        );
      }
      return renderAuthenticatorSetup(ctx, door, account, { error: t(`authenticator.error.${result.reason}`) }, 400);
    }
    const amr = methodsOf([...(pending.amr as AuthenticationMethod[]), 'otp']);
    await extendPendingSignIn(deps.db, id, amr);
    if (result.recoveryCodes) return renderRecoveryCodes(ctx, door, result.recoveryCodes);
    await finishPending(ctx, door, id, pending, amr);
  });

  router.post(`${prefix}/setup/passkey`, formBody, async (ctx) => {
    const form = readForm(ctx, registrationForm);
    const setup = await setupContext(ctx);
    if (!setup) return renderExpired(ctx, await doorOf(ctx));
    const { door, account, id, pending } = setup;
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
    if (!result.ok) {
      const message = t(result.reason === 'duplicate' ? 'passkey.error.duplicate' : passkeyRefusalMessages[result.reason]);
      return renderSetup(ctx, door, account, { error: message }, 400);
    }
    const amr = methodsOf([...(pending.amr as AuthenticationMethod[]), result.method]);
    await extendPendingSignIn(deps.db, id, amr);
    if (result.recoveryCodes) return renderRecoveryCodes(ctx, door, result.recoveryCodes);
    await finishPending(ctx, door, id, pending, amr);
  });

  router.post(`${prefix}/setup/done`, formBody, async (ctx) => {
    readForm(ctx, csrfOnlyForm);
    const setup = await setupContext(ctx);
    if (!setup) return renderExpired(ctx, await doorOf(ctx));
    const { door, id, pending, account } = setup;
    const amr = pending.amr as AuthenticationMethod[];
    if (!satisfies(levelOf(amr), levelToReach(door, await factorsOf(deps.db, account.id)))) {
      ctx.status = 303;
      return ctx.redirect(stepUrl(door, 'setup'));
    }
    await finishPending(ctx, door, id, pending, amr);
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
