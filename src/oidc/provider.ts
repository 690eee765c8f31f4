import { createHmac } from 'node:crypto';
import Provider, { errors, type Configuration, type KoaContextWithOIDC } from 'oidc-provider';
import type { Config } from '../config.js';
import type { Database } from '../db/index.js';
import type { Logger } from '../logger.js';
import { findAccountById } from '../accounts/store.js';
import { recordAuditEvent } from '../audit/log.js';
import { clientSecretMatches } from '../security/client-secrets.js';
import type { MetadataValidator } from '../clients/store.js';
import { InvalidInput } from '../errors.js';
import { createAdapterFactory } from './adapter.js';
import { returnInitialAccessTokenUse, spendInitialAccessTokenUse } from './artefacts.js';
import { accountClaims, claimsByScope, supportedScopes } from '../accounts/claims.js';
import { loadSigningKeys } from './keys.js';
import { loadServerSecrets } from './secrets.js';

/** Pages oidc-provider renders itself; the http layer supplies them so all pages share one look. */
export interface ProviderPages {
  renderError(ctx: KoaContextWithOIDC, out: { error: string; error_description?: string }, error: Error): Promise<void>;
  logoutConfirmation(ctx: KoaContextWithOIDC, form: string): Promise<void>;
  logoutSuccess(ctx: KoaContextWithOIDC): Promise<void>;
}

export interface BuiltProvider {
  provider: Provider;
  cookieKeys: string[];
}

/**
 * The paths oidc-provider answers (its defaults, written out: the http layer refuses other
 * spellings of them and limits some by path).
 */
export const providerRoutes = {
  authorization: '/auth',
  backchannel_authentication: '/backchannel',
  code_verification: '/device',
  device_authorization: '/device/auth',
  end_session: '/session/end',
  introspection: '/token/introspection',
  jwks: '/jwks',
  pushed_authorization_request: '/request',
  registration: '/reg',
  revocation: '/token/revocation',
  token: '/token',
  userinfo: '/me',
} as const;

/** The registration policy every initial access token carries: it spends one of the token's uses. */
export const countedUsesPolicy = 'counted-uses';

const loopbackRedirectHosts = new Set(['127.0.0.1', '[::1]']);

/**
 * What a service registering itself may use as a redirect or logout URI: https, or for a
 * native app a loopback IP literal over http (RFC 8252 §7.3; `localhost` is not recommended
 * there, §8.3) or a private-use scheme in reverse-domain form (§7.1). Administrators
 * registering services through the CLI may also use http://localhost for development.
 */
function acceptableForRegistration(uri: unknown, native: boolean): boolean {
  if (typeof uri !== 'string') return false;
  const url = URL.parse(uri);
  if (!url) return false;
  if (url.protocol === 'https:') return true;
  if (!native) return false;
  if (url.protocol === 'http:') return loopbackRedirectHosts.has(url.hostname);
  return /^[a-z][a-z0-9+-]*\.[a-z0-9.+-]+:$/.test(url.protocol);
}

/** Dynamic registration's rules on top of oidc-provider's: https only (loopback for native apps) and pairwise subjects. */
function enforceRegistrationPolicy(metadata: Record<string, unknown>): void {
  const native = metadata['application_type'] === 'native';
  for (const uri of (metadata['redirect_uris'] as unknown[] | undefined) ?? []) {
    if (!acceptableForRegistration(uri, native)) {
      throw new errors.InvalidRedirectUri(
        'redirect_uris must use https (native apps: http on 127.0.0.1 or [::1], or a private-use scheme)',
      );
    }
  }
  for (const uri of (metadata['post_logout_redirect_uris'] as unknown[] | undefined) ?? []) {
    if (!acceptableForRegistration(uri, native)) throw new errors.InvalidClientMetadata('post_logout_redirect_uris must use https');
  }
  for (const key of ['backchannel_logout_uri', 'frontchannel_logout_uri', 'initiate_login_uri']) {
    if (metadata[key] !== undefined && !acceptableForRegistration(metadata[key], false)) {
      throw new errors.InvalidClientMetadata(`${key} must use https`);
    }
  }
  // A service registering itself never gets the account id as sub: it could correlate people with other services.
  metadata['subject_type'] = 'pairwise';
}

export function isFirstParty(client: { [key: string]: unknown } | undefined): boolean {
  return client?.['first_party'] === true;
}

/** Requested OIDC scopes the client is registered for; the ones a first-party client gets without asking. */
function permittedScopes(requested: string, clientScope: string | undefined): string[] {
  const allowed = new Set((clientScope ?? '').split(' '));
  return requested.split(' ').filter((scope) => allowed.has(scope));
}

/** First-party services skip the consent page: their grant is created (or topped up) here. */
export const loadExistingGrant: NonNullable<Configuration['loadExistingGrant']> = async (ctx) => {
  const { client, session } = ctx.oidc;
  if (!client || !session?.accountId) return undefined;
  const grantId = ctx.oidc.result?.consent?.grantId ?? session.grantIdFor(client.clientId);
  const existing = grantId ? await ctx.oidc.provider.Grant.find(grantId) : undefined;
  if (!isFirstParty(client as unknown as { [key: string]: unknown })) return existing;
  const grant = existing ?? new ctx.oidc.provider.Grant({ clientId: client.clientId, accountId: session.accountId });
  const requested = String(ctx.oidc.params?.['scope'] ?? 'openid');
  grant.addOIDCScope(permittedScopes(requested, client.scope).join(' '));
  await grant.save();
  return grant;
};

export async function buildProvider(config: Config, db: Database, logger: Logger, pages: ProviderPages): Promise<BuiltProvider> {
  const [jwks, secrets] = await Promise.all([loadSigningKeys(db, { config, logger }), loadServerSecrets(db, config)]);

  const configuration: Configuration = {
    adapter: createAdapterFactory(db),
    clients: [],
    jwks: jwks as Configuration['jwks'],
    cookies: {
      keys: secrets.cookieKeys,
      long: { httpOnly: true, sameSite: 'lax', signed: true },
      short: { httpOnly: true, sameSite: 'lax', signed: true },
    },
    scopes: [...supportedScopes],
    claims: Object.fromEntries(Object.entries(claimsByScope).map(([scope, claims]) => [scope, [...claims]])),
    conformIdTokenClaims: true,
    subjectTypes: ['public', 'pairwise'],
    responseTypes: ['code'],
    // OIDC requires redirect_uri; omitting it also sent oidc-provider's resume-route error
    // handler into a TypeError (a 500 for GET /auth/<uid>?client_id=…).
    allowOmittingSingleRegisteredRedirectUri: false,
    // No client_secret_jwt: it needs the secret itself, and we keep only its digest.
    clientAuthMethods: ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'],
    clientDefaults: {
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: 'RS256',
      subject_type: 'pairwise',
    },
    extraClientMetadata: {
      // Front-channel logout (OIDC Front-Channel Logout 1.0) is not built into oidc-provider 9;
      // http/frontchannel-logout.ts renders it.
      properties: ['first_party', 'frontchannel_logout_uri', 'frontchannel_logout_session_required'],
      validator(ctx, key, value, metadata) {
        if (
          key === 'frontchannel_logout_uri' &&
          value !== undefined &&
          (typeof value !== 'string' || !/^https?:\/\//.test(value) || !URL.canParse(value))
        ) {
          throw new errors.InvalidClientMetadata('frontchannel_logout_uri must be an http(s) URL');
        }
        if (key === 'frontchannel_logout_session_required' && value !== undefined && typeof value !== 'boolean') {
          throw new errors.InvalidClientMetadata('frontchannel_logout_session_required must be a boolean');
        }
        if (key === 'first_party') {
          // ctx is set only when a service registers itself (/reg): the CLI's clients are an administrator's.
          if (ctx) enforceRegistrationPolicy(metadata);
          if (value === undefined) metadata['first_party'] = false;
          else if (typeof value !== 'boolean') throw new TypeError('first_party must be a boolean');
          // ctx is set only for dynamic registration: a service must not make itself first-party
          // (and so skip consent); only an admin can.
          else if (value && ctx) throw new errors.InvalidClientMetadata('first_party can only be set by an administrator');
        }
      },
    },
    // Stable per (sector, account), unlinkable across sectors without the salt.
    async pairwiseIdentifier(_ctx, accountId, client) {
      return createHmac('sha256', secrets.pairwiseSalt).update(`${client.sectorIdentifier}\0${accountId}`).digest('base64url');
    },
    async findAccount(_ctx, sub) {
      const account = await findAccountById(db, sub);
      if (!account) return undefined;
      return {
        accountId: account.id,
        async claims(_use, _scope, _claims, _rejected) {
          return accountClaims(account, account.id) as { sub: string };
        },
      };
    },
    pkce: { required: (_ctx, client) => client.clientAuthMethod === 'none' },
    clientBasedCORS(_ctx, origin, client) {
      if (client.clientAuthMethod !== 'none') return false;
      return (client.redirectUris ?? []).some((uri) => URL.parse(uri)?.origin === origin);
    },
    features: {
      devInteractions: { enabled: false },
      // Off unless DYNAMIC_REGISTRATION=true, and then only with an initial access token
      // from `npx idp clients initial-token`.
      registration: {
        enabled: config.dynamicRegistration,
        initialAccessToken: true,
        issueRegistrationAccessToken: true,
        policies: {
          // Initial access tokens are single-use unless created with more uses (`idp clients initial-token --uses N`).
          async [countedUsesPolicy](ctx) {
            const token = ctx.oidc.entities.InitialAccessToken?.jti;
            if (!token || !(await spendInitialAccessTokenUse(db, token)))
              throw new errors.InvalidToken('initial access token already used');
            ctx.state['spentInitialAccessToken'] = token;
          },
        },
      },
      // A service may introspect or revoke only tokens issued to itself: one service must not
      // learn about a user's tokens at another.
      revocation: { enabled: true, allowedPolicy: async (_ctx, client, token) => token.clientId === client.clientId },
      introspection: { enabled: true, allowedPolicy: async (_ctx, client, token) => token.clientId === client.clientId },
      clientCredentials: { enabled: true },
      backchannelLogout: { enabled: true },
      userinfo: { enabled: true },
      rpInitiatedLogout: {
        enabled: true,
        logoutSource: (ctx, form) => pages.logoutConfirmation(ctx, form),
        postLogoutSuccessSource: (ctx) => pages.logoutSuccess(ctx),
      },
    },
    renderError: (ctx, out, error) => pages.renderError(ctx, out, error),
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    rotateRefreshToken: true,
    async issueRefreshToken(_ctx, client) {
      return client.grantTypeAllowed('refresh_token');
    },
    loadExistingGrant,
    routes: providerRoutes,
    ttl: {
      AccessToken: config.ttl.accessToken,
      AuthorizationCode: config.ttl.authorizationCode,
      ClientCredentials: config.ttl.clientCredentials,
      IdToken: config.ttl.idToken,
      // A public client's refresh token (one a thief can use without a secret) keeps the expiry of
      // the first one through every rotation, as oidc-provider's own default does: an absolute
      // lifetime (RFC 9700 §4.14.2). Confidential and sender-constrained clients slide, within the grant.
      RefreshToken(ctx, token, client) {
        const rotated = ctx?.oidc?.entities.RotatedRefreshToken;
        if (rotated && client.clientAuthMethod === 'none' && !token.isSenderConstrained()) return rotated.remainingTTL;
        return config.ttl.refreshToken;
      },
      Interaction: config.ttl.interaction,
      Session: config.ttl.session,
      Grant: config.ttl.grant,
    },
    enableHttpPostMethods: false,
    ...(config.allowPrivateNetworkFetch
      ? {
          // Back-channel logout to services on loopback/private addresses (development, tests).
          fetch: (url: string | URL | Request, options?: RequestInit) => {
            if (options) delete (options as { dispatcher?: unknown }).dispatcher;
            return fetch(url, options);
          },
        }
      : {}),
  };

  const provider = new Provider(config.issuer, configuration);
  // Stored secrets are digests (security/client-secrets.ts): compare the presented secret's digest.
  (provider.Client.prototype as unknown as { compareClientSecret(actual: string): boolean }).compareClientSecret = function (
    this: { clientSecret?: string },
    actual: string,
  ) {
    return clientSecretMatches(this.clientSecret, actual);
  };
  // Mounted in the outer app, requests carry its proxy settings; the provider's own app gets the same.
  provider.proxy = config.trustProxy;
  provider.maxIpsCount = config.trustedProxyHops;
  provider.on('server_error', (_ctx, error) => logger.error({ err: error }, 'oidc-provider server error'));
  provider.on('grant.revoked', (ctx, grantId) => {
    const client = ctx.oidc?.client;
    recordAuditEvent(db, {
      event: 'grant.revoked',
      outcome: 'success',
      clientId: client?.clientId ?? null,
      ip: ctx.ip,
      details: { grantId },
    }).catch((error: Error) => logger.warn({ err: error.message }, 'could not record grant revocation'));
  });
  // A registration refused after its token's use was spent (invalid metadata) gives the use back.
  provider.on('registration_create.error', (ctx) => {
    const token = ctx.state['spentInitialAccessToken'] as string | undefined;
    if (!token) return;
    returnInitialAccessTokenUse(db, token).catch((error: Error) =>
      logger.warn({ err: error.message }, 'could not return an initial access token use'),
    );
  });
  provider.on('backchannel.error', (_ctx, error, client) =>
    logger.warn({ clientId: client.clientId, err: error.message }, 'back-channel logout failed'),
  );
  return { provider, cookieKeys: secrets.cookieKeys };
}

/** Validates client metadata with oidc-provider's own rules, so the CLI never stores a client the server would reject. */
export function clientMetadataValidator(provider: Provider): MetadataValidator {
  return async (metadata) => {
    try {
      await provider.Client.validate(metadata as never);
    } catch (error) {
      const description = (error as { error_description?: string }).error_description ?? (error as Error).message;
      throw new InvalidInput(`invalid client metadata: ${description}`);
    }
  };
}
