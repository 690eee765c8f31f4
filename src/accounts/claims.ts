import type { PlainKey } from '../i18n/catalogue.js';
import type { Account } from './store.js';

/**
 * The only place that decides what a service can receive. oidc-provider releases a claim
 * only when the grant holds the scope that lists it here.
 */
export const claimsByScope = {
  openid: ['sub'],
  profile: ['name', 'given_name', 'family_name', 'locale', 'zoneinfo', 'updated_at'],
  email: ['email', 'email_verified'],
} as const;

export const supportedScopes = ['openid', 'profile', 'email', 'offline_access'] as const;
export type SupportedScope = (typeof supportedScopes)[number];

type Claim = (typeof claimsByScope)[keyof typeof claimsByScope][number];

/**
 * Plain-words descriptions of each scope a service may ask for, shown on the consent and
 * account pages: catalogue keys, so each language says it in its own words.
 */
export const scopeDescriptions: Record<SupportedScope, PlainKey> = {
  openid: 'scope.openid',
  profile: 'scope.profile',
  email: 'scope.email',
  offline_access: 'scope.offline_access',
};

/** Plain-words names of each claim (catalogue keys). */
export const claimLabels: Record<Claim, PlainKey> = {
  sub: 'claim.sub',
  name: 'claim.name',
  given_name: 'claim.given_name',
  family_name: 'claim.family_name',
  locale: 'claim.locale',
  zoneinfo: 'claim.zoneinfo',
  updated_at: 'claim.updated_at',
  email: 'claim.email',
  email_verified: 'claim.email_verified',
};

export interface ScopeDisclosure {
  scope: SupportedScope;
  description: PlainKey;
  claims: PlainKey[];
}

/** What a service receives for each of these scopes, in plain words, in a stable order. */
export function describeScopes(scopes: Iterable<string>): ScopeDisclosure[] {
  const wanted = new Set(scopes);
  return supportedScopes
    .filter((scope) => wanted.has(scope))
    .map((scope) => ({
      scope,
      description: scopeDescriptions[scope],
      claims: scope in claimsByScope ? claimsByScope[scope as keyof typeof claimsByScope].map((claim: Claim) => claimLabels[claim]) : [],
    }));
}

/** Every claim an account can yield; oidc-provider filters them down to the granted scopes. */
export function accountClaims(account: Account, sub: string): Record<string, unknown> {
  return {
    sub,
    email: account.email,
    email_verified: account.emailVerified,
    name: account.name ?? undefined,
    given_name: account.givenName ?? undefined,
    family_name: account.familyName ?? undefined,
    locale: account.locale ?? undefined,
    // Only what the person chose: the default of their language is not theirs to announce.
    zoneinfo: account.zoneinfo ?? undefined,
    updated_at: Math.floor(account.updatedAt.getTime() / 1000),
  };
}
