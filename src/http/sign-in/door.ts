import type { Context } from 'koa';
import { acrLevels, satisfies, type AcrLevel, type AuthenticationMethod } from '../../factors/levels.js';
import { findPendingSignIn, finishPendingSignIn, startPendingSignIn, type PendingSignIn } from '../../factors/pending-sign-ins.js';
import type { Factors } from '../../factors/summary.js';
import { pageTranslator, renderPage } from '../render.js';
import type { SelfServiceDeps } from '../self-service.js';

/**
 * A door that signs people in: a service's sign-in (an interaction) or the account pages.
 * It says where its steps live, what level the sign-in must reach, and how a finished
 * sign-in is handed over; steps.ts and setup-offer.ts run the steps for every door alike.
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
export const stepUrl = (door: SignInDoor, step: string) => `${door.base}/${step}${door.carry ?? ''}`;

/** What a door must reach once the account is known: the service's level, and two factors for an account that has them. */
export function levelToReach(door: SignInDoor, factors: Pick<Factors, 'passkeys' | 'totp'>): AcrLevel {
  const own = factors.passkeys.length > 0 || factors.totp ? acrLevels.twoFactors : acrLevels.oneFactor;
  return door.required && satisfies(door.required, own) ? door.required : own;
}

export interface SecondStepMethods {
  passkey: boolean;
  totp: boolean;
  recovery: boolean;
}

/** The second-step methods that can reach `level` for this account (passkeys only where they are offered). */
export function usableMethods(factors: Factors, level: AcrLevel, passkeysOffered: boolean): SecondStepMethods {
  const passkey = passkeysOffered && factors.passkeys.length > 0;
  if (level === acrLevels.phishingResistant) return { passkey, totp: false, recovery: false };
  return { passkey, totp: factors.totp !== undefined, recovery: factors.recoveryCodes.unused > 0 };
}

export const anyMethod = (methods: SecondStepMethods) => methods.passkey || methods.totp || methods.recovery;

// The browser holds its sign-in in progress in a cookie of its own (the row is pending_sign_ins).
const PENDING_COOKIE = 'idp.pending';
const pendingCookieOptions = (ctx: Context) =>
  ({ httpOnly: true, sameSite: 'lax', signed: true, secure: ctx.secure, path: '/', overwrite: true, maxAge: 600_000 }) as const;

export async function holdPendingSignIn(ctx: Context, deps: SelfServiceDeps, door: SignInDoor, pending: PendingSignIn): Promise<void> {
  const id = await startPendingSignIn(deps.db, { ...pending, door: door.name });
  ctx.cookies.set(PENDING_COOKIE, id, pendingCookieOptions(ctx));
}

/** The pending sign-in of this browser at this door, with its account and the account's factors. */
export async function currentPending(ctx: Context, deps: SelfServiceDeps, door: SignInDoor, options: { totpSecret?: boolean } = {}) {
  const id = ctx.cookies.get(PENDING_COOKIE, { signed: true });
  const found = id ? await findPendingSignIn(deps.db, id, door.name, options) : undefined;
  if (!found || !id) return undefined;
  const { account, factors, totpSecretEnvelope, ...pending } = found;
  return { id, pending, account, factors, totpSecretEnvelope };
}

export function forgetPending(ctx: Context): void {
  ctx.cookies.set(PENDING_COOKIE, null, pendingCookieOptions(ctx));
}

/** The page to show when the sign-in in progress is gone (expired, finished in another tab) or was never there. */
export function renderExpired(ctx: Context, door: SignInDoor): void {
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
export async function finishPending(
  ctx: Context,
  deps: SelfServiceDeps,
  door: SignInDoor,
  current: { id: string; pending: PendingSignIn },
  amr: AuthenticationMethod[],
): Promise<void> {
  if (!(await finishPendingSignIn(deps.db, current.id))) return renderExpired(ctx, door);
  forgetPending(ctx);
  await door.finish(ctx, { accountId: current.pending.accountId, amr });
}
