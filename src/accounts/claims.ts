import type { Account } from './store.js';

/**
 * The only place that decides what a service can receive. oidc-provider releases a claim
 * only when the grant holds the scope that lists it here.
 */
export const claimsByScope = {
  openid: ['sub'],
  profile: ['name', 'given_name', 'family_name', 'locale', 'updated_at'],
  email: ['email', 'email_verified'],
} as const;

export const supportedScopes = ['openid', 'profile', 'email', 'offline_access'] as const;
export type SupportedScope = (typeof supportedScopes)[number];

/** Plain-words descriptions shown on the consent page, one per scope a service may ask for. */
export const scopeDescriptions: Record<SupportedScope, string> = {
  openid: 'A service-specific identifier for your account (it cannot be used to link you across services)',
  profile: 'Your name (full, given and family name), your language, and when you last changed them',
  email: 'Your email address and whether it has been verified',
  offline_access: 'Keep access while you are away, until you revoke it',
};

/** Plain-words names of each claim, for consent and account pages. */
export const claimLabels: Record<string, string> = {
  sub: 'An identifier for you that only this service uses',
  name: 'Full name',
  given_name: 'Given name',
  family_name: 'Family name',
  locale: 'Preferred language',
  updated_at: 'When you last updated your profile',
  email: 'Email address',
  email_verified: 'Whether your email address is verified',
};

export interface ScopeDisclosure {
  scope: SupportedScope;
  description: string;
  claims: string[];
}

/** What a service receives for each of these scopes, in plain words, in a stable order. */
export function describeScopes(scopes: Iterable<string>): ScopeDisclosure[] {
  const wanted = new Set(scopes);
  return supportedScopes
    .filter((scope) => wanted.has(scope))
    .map((scope) => ({
      scope,
      description: scopeDescriptions[scope],
      claims: scope in claimsByScope ? claimsByScope[scope as keyof typeof claimsByScope].map((claim) => claimLabels[claim] ?? claim) : [],
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
    updated_at: Math.floor(account.updatedAt.getTime() / 1000),
  };
}
