import { interactionPolicy, type KoaContextWithOIDC } from 'oidc-provider';
import { isAcrLevel, satisfies, strongest, weakest, type AcrLevel } from '../factors/levels.js';

/**
 * What a request needs of the sign-in: a service may ask with acr_values (any of the listed
 * levels will do, so the weakest known one), and an administrator may require a level of the
 * service (require_acr); the stronger applies. Unknown values are ignored, as OIDC Core
 * 3.1.2.1 lets a provider do with acr_values. (The `claims` request parameter, the other way
 * to ask, is not enabled: claims_parameter_supported is false.)
 */
export interface LevelRequest {
  acrValues?: unknown;
  clientRequiredAcr?: unknown;
}

const requestedValues = (request: LevelRequest): AcrLevel[] =>
  (typeof request.acrValues === 'string' ? request.acrValues.split(' ') : []).filter(isAcrLevel);

export function requiredLevel(request: LevelRequest): AcrLevel | undefined {
  const asked = weakest(requestedValues(request));
  const required = isAcrLevel(request.clientRequiredAcr) ? request.clientRequiredAcr : undefined;
  return strongest([asked, required].filter((level): level is AcrLevel => level !== undefined));
}

/**
 * The acr an ID token reports for a sign-in that reached `achieved`: the strongest requested
 * level it satisfies (the service asked for levels it understands), else what it reached.
 */
export function reportedAcr(achieved: string | undefined, request: LevelRequest): string | undefined {
  if (!achieved) return undefined;
  const met = requestedValues(request).filter((level) => satisfies(achieved, level));
  return strongest(met) ?? achieved;
}

const levelRequestOf = (ctx: KoaContextWithOIDC): LevelRequest => ({
  acrValues: ctx.oidc.params?.['acr_values'],
  clientRequiredAcr: ctx.oidc.client?.['require_acr'],
});

/**
 * The login prompt's check for levels, replacing oidc-provider's essential_acr(s) checks
 * (which compare for equality: a passkey sign-in would never meet a request for two factors).
 * A session below the required level is asked to sign in again; the page then asks only for
 * what is missing.
 */
export const levelCheck = new interactionPolicy.Check(
  'acr_level',
  'the requested authentication level was not reached',
  // Added to the login prompt after it was built, so its error is named here (prompt=none).
  'login_required',
  (ctx) => {
    const required = requiredLevel(levelRequestOf(ctx));
    if (!required) return interactionPolicy.Check.NO_NEED_TO_PROMPT;
    return satisfies(ctx.oidc.session?.acr, required) ? interactionPolicy.Check.NO_NEED_TO_PROMPT : interactionPolicy.Check.REQUEST_PROMPT;
  },
  (ctx) => ({ required_acr: requiredLevel(levelRequestOf(ctx)) }),
);

/** oidc-provider's default policy with levels understood. */
export function interactionPolicyWithLevels() {
  const policy = interactionPolicy.base();
  const login = policy.get('login')!;
  login.checks.remove('essential_acrs');
  login.checks.remove('essential_acr');
  login.checks.add(levelCheck);
  return policy;
}
