import { isIP } from 'node:net';
import type { ChallengeKeys } from '../factors/challenges.js';
import { relyingPartyOf, type RelyingParty } from '../factors/webauthn.js';
import { translator } from '../i18n/catalogue.js';
import { cachedKeyRing } from '../oidc/keys.js';
import type { KeyRing } from '../security/key-encryption.js';
import type { WorkflowDeps } from './deps.js';

/** WebAuthn refuses IP addresses as relying-party ids: passkeys are offered only with ISSUER on a host name. */
export function passkeysOffered(deps: Pick<WorkflowDeps, 'config'>): boolean {
  return isIP(new URL(deps.config.issuer).hostname.replace(/^\[|\]$/g, '')) === 0;
}

/** Our WebAuthn relying party: the issuer's host and origin, under the brand people see. */
export function relyingParty(deps: Pick<WorkflowDeps, 'config'>): RelyingParty {
  return relyingPartyOf(deps.config.issuer, translator('en')('site.brand'));
}

/** WebAuthn challenges are signed with keys derived from the provider's current cookie keys. */
export function challengeKeys(deps: Pick<WorkflowDeps, 'provider'>): ChallengeKeys {
  return { cookieKeys: () => deps.provider.keys as string[] };
}

// Read once per database and configuration (a process's): the keys only change with the configuration,
// and the database-held key, once made, never does. Reading it costs two statements, one a write.
const keyRings = new WeakMap<object, WeakMap<object, () => Promise<KeyRing>>>();

/** Authenticator-app secrets are encrypted under the key-encryption key, as signing keys are. */
export function secretKeys(deps: Pick<WorkflowDeps, 'db' | 'config'>): Promise<KeyRing> {
  let byConfig = keyRings.get(deps.db);
  if (!byConfig) keyRings.set(deps.db, (byConfig = new WeakMap()));
  let ring = byConfig.get(deps.config);
  if (!ring) byConfig.set(deps.config, (ring = cachedKeyRing(deps.db, deps.config)));
  return ring();
}

/** How long a page's WebAuthn challenge may be answered: as long as the sign-in it belongs to. */
export const CHALLENGE_SECONDS = 10 * 60;

/** What a challenge is bound to: a sign-in at one door, or adding a passkey to one account. */
export const challengeBinding = {
  signIn: (door: string) => `sign-in\u0000${door}`,
  secondStep: (door: string, accountId: string) => `second-step\u0000${door}\u0000${accountId}`,
  registration: (accountId: string) => `register\u0000${accountId}`,
};
