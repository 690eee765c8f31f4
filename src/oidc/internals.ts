import type Provider from 'oidc-provider';
import type { KoaContextWithOIDC } from 'oidc-provider';
// oidc-provider exports no way to change its signing keys after it was built; this is the
// function its constructor runs with the `jwks` configuration (lib/helpers/initialize_keystore.js).
import initializeKeyStore from 'oidc-provider/lib/helpers/initialize_keystore.js';
// The per-provider internal state (its grant handlers among it), read as oidc-provider itself does.
import internalState from 'oidc-provider/lib/helpers/weak_cache.js';

/**
 * Every reach into oidc-provider beyond its documented configuration, in one place, each
 * with the reason. test/unit/oidc-internals.test.ts checks that each member is still there,
 * so an upgrade that moves one fails a test instead of a sign-in.
 */

type Client = InstanceType<Provider['Client']>;
type SendLogoutToken = (this: Client, accountId: string, sid: string | undefined) => Promise<void>;

interface ClientInternals {
  backchannelLogout: SendLogoutToken;
  includeSid: () => boolean;
  compareClientSecret(actual: string): boolean;
}

const clientPrototype = (provider: Provider) => provider.Client.prototype as unknown as ClientInternals;

/**
 * Client secrets are stored as digests (security/client-secrets.ts): oidc-provider compares
 * the presented secret with the stored value, so the comparison must digest it first.
 */
export function compareClientSecretsBy(provider: Provider, matches: (stored: string | undefined, presented: string) => boolean): void {
  clientPrototype(provider).compareClientSecret = function (this: { clientSecret?: string }, actual: string) {
    return matches(this.clientSecret, actual);
  };
}

/**
 * oidc-provider sends back-channel logout tokens inline, while the person waits; the durable
 * queue (backchannel.ts) takes the send over and calls oidc-provider's own send from its
 * worker. Returns that original send. Also puts `sid` in every ID token, not only for
 * back-channel clients, so every service can match logout tokens to sessions.
 */
export function takeOverBackchannelLogout(provider: Provider, queue: SendLogoutToken): SendLogoutToken {
  const prototype = clientPrototype(provider);
  const send = prototype.backchannelLogout;
  prototype.backchannelLogout = queue;
  prototype.includeSid = () => true;
  return send;
}

/**
 * ReplayDetection.unique (DPoP proofs, client assertions) reads, then writes: two requests
 * with the same proof in flight both passed. Replaced by one atomic statement.
 */
export function replaceReplayDetection(provider: Provider, firstUse: (iss: string, jti: string, exp: number) => Promise<boolean>): void {
  (provider.ReplayDetection as unknown as { unique: typeof firstUse }).unique = firstUse;
}

/**
 * Replaces the signing keys of a running provider: the keystore it signs with and the JWKS it
 * publishes, as its constructor set them. Requests in flight finish with the previous set.
 */
export function replaceSigningKeys(provider: Provider, jwks: { keys: unknown[] }): void {
  initializeKeyStore.call(provider, jwks);
}

/**
 * The JWKS object the provider publishes. initializeKeyStore makes a new one for every key
 * set, so its identity says whether documents built from the keys are still current.
 */
export function publishedKeySet(provider: Provider): object {
  return (internalState(provider) as { jwks: object }).jwks;
}

type GrantHandler = (ctx: KoaContextWithOIDC) => Promise<void>;

/**
 * Runs `check` before oidc-provider's own handler of a grant type, once the request's
 * parameters are parsed. For the device grant's slow_down (RFC 8628 §3.5), which
 * oidc-provider does not send.
 */
export function checkBeforeGrant(provider: Provider, grantType: string, check: GrantHandler): void {
  const handlers = (internalState(provider) as { grantTypeHandlers: Map<string, GrantHandler> }).grantTypeHandlers;
  const handle = handlers.get(grantType);
  if (!handle) throw new Error(`oidc-provider has no handler for the ${grantType} grant`);
  handlers.set(grantType, async (ctx) => {
    await check(ctx);
    await handle(ctx);
  });
}

/** The members of oidc-provider's per-request context (ctx.oidc) that the acr report reads. */
export interface AcrContext {
  session?: { acr?: string };
  params?: Record<string, unknown>;
  client?: Record<string, unknown>;
}

/**
 * The acr an authorization code, ID token or device code records: oidc-provider takes the
 * session's as it is (OIDCContext.acr). With levels that satisfy each other, a request for a
 * lower level met by a higher one must be answered with the requested value.
 */
export function reportAcrBy(provider: Provider, report: (oidc: AcrContext) => string | undefined): void {
  Object.defineProperty(provider.OIDCContext.prototype, 'acr', {
    configurable: true,
    get(this: AcrContext) {
      return report(this);
    },
  });
}

interface ProviderConfiguration {
  pairwiseIdentifier(ctx: unknown, accountId: string, client: Client): Promise<string>;
}

interface Keystore {
  selectForSign(options: { alg: string; use: 'sig' }): { kid?: string }[];
  /** Without getPublic, the JWK itself (private members included). */
  getKeyObject(jwk: { kid?: string }): import('jose').JWK;
}

/**
 * The key oidc-provider signs ID tokens with for `alg` (the first active one of the keystore
 * it was built or refreshed with), for the Security Event Tokens we send to services: they
 * verify them against the same /jwks.
 */
export function signingKeyOf(provider: Provider, alg: 'RS256' | 'ES256'): { kid: string; key: import('jose').JWK } {
  const keystore = (internalState(provider) as { keystore: Keystore }).keystore;
  const [jwk] = keystore.selectForSign({ alg, use: 'sig' });
  if (!jwk?.kid) throw new Error(`no ${alg} signing key`);
  // For signing, the keystore hands out the private JWK itself, which jose signs with.
  return { kid: jwk.kid, key: keystore.getKeyObject(jwk) };
}

/**
 * The `sub` a service knows an account by, as oidc-provider computes it for its ID tokens:
 * the account id for a public service, the configured pairwise identifier otherwise.
 */
export async function subjectForClient(provider: Provider, client: Client, accountId: string): Promise<string> {
  if (client.subjectType !== 'pairwise') return accountId;
  const configuration = (internalState(provider) as { configuration: ProviderConfiguration }).configuration;
  return configuration.pairwiseIdentifier(undefined, accountId, client);
}
