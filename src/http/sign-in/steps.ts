import type Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import type { Account } from '../../accounts/store.js';
import { TooManyAttempts } from '../../errors.js';
import { levelOf, methodsOf, satisfies, type AuthenticationMethod } from '../../factors/levels.js';
import { recoveryCodeSchema } from '../../factors/recovery-codes.js';
import { factorsOf, type Factors } from '../../factors/summary.js';
import { totpCodeSchema } from '../../factors/totp.js';
import { authenticationResponseSchema, type AuthenticationResponse } from '../../factors/webauthn.js';
import { passkeysOffered } from '../../use-cases/factor-context.js';
import { passkeyRequestOptions, signInWithPasskey, verifySecondStep, type SecondStepAnswer } from '../../use-cases/second-step.js';
import { tooManyAttemptsMessage } from '../errors.js';
import { formBody, readForm } from '../forms.js';
import { currentLanguage } from '../language.js';
import { pageTranslator, renderPage } from '../render.js';
import type { SelfServiceDeps } from '../self-service.js';
import {
  anyMethod,
  currentPending,
  finishPending,
  holdPendingSignIn,
  levelToReach,
  renderExpired,
  stepUrl,
  usableMethods,
  type SignInDoor,
} from './door.js';
import { parseCredential, passkeyRefusalMessages } from './factor-forms.js';

/**
 * The steps of a sign-in after (or instead of) the password, for every door alike: the
 * passkey sign-in of the first step, and the second step after a right password (a code, a
 * passkey or a recovery code).
 */

/**
 * Where a sign-in goes once its account is known by a first step (a right password, a
 * passkey, or the session a service wants stepped up): done when it already reaches what is
 * needed; else the second step when the account has a factor that gets there; else the
 * offer to set one up (setup-offer.ts) — each through a pending sign-in this browser holds.
 */
export async function continueSignIn(
  ctx: Context,
  deps: SelfServiceDeps,
  door: SignInDoor,
  signIn: {
    account: Account;
    amr: AuthenticationMethod[];
    /** Known when the password sign-in has just read them (or the account is new): not read again. */
    factors?: Factors;
  },
): Promise<void> {
  // A passkey, or a session that predates it, does not get a disabled account in either.
  if (signIn.account.disabledAt) return door.restart(ctx, pageTranslator(ctx)('login.error.disabled'), 403);
  const factors = signIn.factors ?? (await factorsOf(deps.db, signIn.account.id));
  const level = levelToReach(door, factors);
  if (satisfies(levelOf(signIn.amr), level)) return door.finish(ctx, { accountId: signIn.account.id, amr: signIn.amr });
  await holdPendingSignIn(ctx, deps, door, { accountId: signIn.account.id, amr: signIn.amr });
  ctx.status = 303;
  ctx.redirect(anyMethod(usableMethods(factors, level, passkeysOffered(deps))) ? stepUrl(door, 'second-step') : stepUrl(door, 'setup'));
}

/** The passkey choice of a first-step page: its options, and the scripts that use them (neither when passkeys are off). */
export async function passkeyChoice(deps: SelfServiceDeps, door: SignInDoor): Promise<{ passkeyOptions?: string; scripts: boolean }> {
  if (!passkeysOffered(deps)) return { scripts: false };
  return { passkeyOptions: JSON.stringify(await passkeyRequestOptions(deps, { door: door.name })), scripts: true };
}

const secondStepForm = z.object({
  code: z.string().max(100).optional(),
  recovery_code: z.string().max(100).optional(),
  credential: z.string().max(12_000).optional(),
  _csrf: z.string().max(200).optional(),
});
const passkeyForm = z.object({ credential: z.string().max(12_000).optional(), _csrf: z.string().max(200).optional() });

/** The passkey sign-in and second-step routes of a door, under `prefix` of its router. */
export function signInStepRoutes(
  router: Router,
  deps: SelfServiceDeps,
  prefix: string,
  doorOf: (ctx: Context) => Promise<SignInDoor>,
): void {
  async function renderSecondStep(
    ctx: Context,
    door: SignInDoor,
    { account, factors }: { account: Account; factors: Factors },
    extra: { error?: string; errorField?: string } = {},
    status = 200,
  ) {
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

  /** The answer in a second-step form, or the message for a form that holds none of the right shape. */
  function answerOf(ctx: Context, form: z.infer<typeof secondStepForm>): SecondStepAnswer | { error: string; errorField?: string } {
    const t = pageTranslator(ctx);
    if (form.credential) {
      const response = parseCredential<AuthenticationResponse>(authenticationResponseSchema, form.credential);
      return response ? { kind: 'passkey', response } : { error: t('passkey.error.malformed') };
    }
    if (form.recovery_code) {
      const code = recoveryCodeSchema.safeParse(form.recovery_code);
      return code.success
        ? { kind: 'recovery', code: code.data }
        : { error: t('secondStep.error.recoveryFormat'), errorField: 'recovery_code' };
    }
    const code = totpCodeSchema.safeParse(form.code ?? '');
    return code.success ? { kind: 'totp', code: code.data } : { error: t('secondStep.error.codeFormat'), errorField: 'code' };
  }

  router.post(`${prefix}/passkey`, formBody, async (ctx) => {
    const door = await doorOf(ctx);
    const form = readForm(ctx, passkeyForm);
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
    if (!result.ok) return door.restart(ctx, pageTranslator(ctx)(passkeyRefusalMessages[result.reason]), 400);
    await continueSignIn(ctx, deps, door, { account: result.account, amr: result.amr });
  });

  router.get(`${prefix}/second-step`, async (ctx) => {
    const door = await doorOf(ctx);
    const current = await currentPending(ctx, deps, door);
    if (!current) return renderExpired(ctx, door);
    await renderSecondStep(ctx, door, current);
  });

  router.post(`${prefix}/second-step`, formBody, async (ctx) => {
    const door = await doorOf(ctx);
    const form = readForm(ctx, secondStepForm);
    const answer = answerOf(ctx, form);
    const current = await currentPending(ctx, deps, door, { totpSecret: !('error' in answer) && answer.kind === 'totp' });
    if (!current) return renderExpired(ctx, door);
    const t = pageTranslator(ctx);
    const { account, pending, factors } = current;
    if ('error' in answer) return renderSecondStep(ctx, door, current, answer, 400);
    const methods = usableMethods(factors, levelToReach(door, factors), passkeysOffered(deps));
    if (!methods[answer.kind]) {
      return renderSecondStep(ctx, door, current, { error: t('secondStep.error.method') }, 400);
    }
    const result = await verifySecondStep(deps, {
      account,
      answer,
      totpSecretEnvelope: current.totpSecretEnvelope,
      amr: pending.amr,
      door: door.name,
      clientId: door.clientId,
      ip: ctx.ip,
      userAgent: ctx.get('user-agent') || undefined,
      language: currentLanguage(ctx),
    });
    if (result.ok) return finishPending(ctx, deps, door, current, methodsOf([...(pending.amr as AuthenticationMethod[]), result.method]));
    switch (result.reason) {
      case 'locked':
        ctx.set('retry-after', String(result.retryAfterSeconds));
        return renderSecondStep(
          ctx,
          door,
          current,
          { error: tooManyAttemptsMessage(t, new TooManyAttempts(result.retryAfterSeconds)) },
          429,
        );
      case 'incorrect':
        return answer.kind === 'recovery'
          ? renderSecondStep(ctx, door, current, { error: t('secondStep.error.recovery'), errorField: 'recovery_code' }, 401)
          : renderSecondStep(ctx, door, current, { error: t('secondStep.error.code'), errorField: 'code' }, 401);
      default:
        return renderSecondStep(ctx, door, current, { error: t(passkeyRefusalMessages[result.reason]) }, 400);
    }
  });
}
