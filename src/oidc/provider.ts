import { createHash, createHmac } from 'node:crypto';
import Provider, { errors, type Configuration, type KoaContextWithOIDC } from 'oidc-provider';
import type { Config } from '../config.js';
import type { Database } from '../db/index.js';
import type { Logger } from '../logger.js';
import { findAccountById, type Account } from '../accounts/store.js';
import { NotifiedCache, type ChangeNotices } from '../db/change-notices.js';
import { recordAuditEvent } from '../audit/log.js';
import { clientSecretMatches } from '../security/client-secrets.js';
import type { MetadataValidator } from '../clients/store.js';
import { InvalidInput } from '../errors.js';
import { deviceCodeGrant, grantTypes } from '../clients/store.js';
import { createAdapterFactory } from './adapter.js';
import { claimReleaseLog, releasedClaimNames } from './claim-release-log.js';
import { latestGrantId, recordFirstUse } from './artefacts.js';
import { extraClientMetadata } from './client-metadata.js';
import { existingGrantLoader } from './grants.js';
import { acrValuesSupported } from '../factors/levels.js';
import { interactionPolicyWithLevels, reportedAcr } from './authentication-level.js';
import { checkBeforeGrant, compareClientSecretsBy, replaceReplayDetection, reportAcrBy } from './internals.js';
import { registrationPolicies, returnSpentUse } from './registration-policy.js';
import { accountClaims, claimsByScope, supportedScopes } from '../accounts/claims.js';
import { languages } from '../i18n/catalogue.js';
import { describeUserAgent } from '../security/user-agent.js';
import { loadSigningKeys } from './keys.js';
import { cookieKeySealer } from './sealing.js';
import { loadServerSecrets } from './secrets.js';

/** Pages oidc-provider renders itself; the http layer supplies them so all pages share one look. */
export interface ProviderPages {
  renderError(ctx: KoaContextWithOIDC, out: { error: string; error_description?: string }, error: Error): Promise<void>;
  logoutConfirmation(ctx: KoaContextWithOIDC, form: string): Promise<void>;
  logoutSuccess(ctx: KoaContextWithOIDC): Promise<void>;
  /** Device sign-in: the code entry page (again, with the error, after a wrong code). */
  deviceCodeEntry(ctx: KoaContextWithOIDC, form: string, error: Error | undefined): Promise<void>;
  deviceCodeConfirmation(ctx: KoaContextWithOIDC, form: string, deviceInfo: DeviceInfo, userCode: string): Promise<void>;
  deviceDone(ctx: KoaContextWithOIDC): Promise<void>;
}

/** What a device-flow confirmation page may say about the device: its browser and system, never its address. */
export type DeviceInfo = { browser: string; os: string };

export interface BuiltProvider {
  provider: Provider;
  cookieKeys: string[];
  /** The kids of the signing keys it was built with, in signing order. */
  signingKids: string[];
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

/** What only a serving instance supplies (the CLI builds a provider too, to validate clients and mint tokens). */
export interface ServingHooks {
  /** Counts a device's poll; true when it came too soon (the answer is slow_down). */
  devicePollTooSoon(deviceCode: string): Promise<boolean>;
  /** Row-change notices from Postgres: clients and accounts are kept in memory while they are live. */
  changeNotices: ChangeNotices;
}

export async function buildProvider(
  config: Config,
  db: Database,
  logger: Logger,
  pages: ProviderPages,
  serving?: ServingHooks,
): Promise<BuiltProvider> {
  const releases = claimReleaseLog(db, logger);
  // Read on every token, userinfo and introspection request; the CLI keeps nothing.
  const accounts = serving ? new NotifiedCache<Account>(serving.changeNotices, 'accounts') : undefined;
  const accountById = (id: string) => (accounts ? accounts.get(id, () => findAccountById(db, id)) : findAccountById(db, id));
  const [jwks, secrets] = await Promise.all([loadSigningKeys(db, { config, logger }), loadServerSecrets(db, config)]);

  // The provider's current cookie keys, which the key refresh replaces after a rotation.
  const built: { provider?: Provider } = {};
  const sealer = cookieKeySealer(() => (built.provider?.keys as string[] | undefined) ?? secrets.cookieKeys);
  const configuration: Configuration = {
    adapter: createAdapterFactory(db, sealer, serving?.changeNotices),
    clients: [],
    jwks: jwks as Configuration['jwks'],
    cookies: {
      keys: secrets.cookieKeys,
      long: { httpOnly: true, sameSite: 'lax', signed: true },
      short: { httpOnly: true, sameSite: 'lax', signed: true },
    },
    scopes: [...supportedScopes],
    // Authentication levels (factors/levels.ts), weakest first; the login prompt checks them.
    acrValues: [...acrValuesSupported],
    // Every ID token says how and when the person signed in (acr, amr, auth_time): services
    // that need a second factor check them without having to ask for them.
    claims: {
      ...Object.fromEntries(Object.entries(claimsByScope).map(([scope, claims]) => [scope, [...claims]])),
      openid: [...claimsByScope.openid, 'acr', 'amr', 'auth_time'],
    },
    // The ID token carries the claims of the granted scopes (what most libraries build their
    // user from); a service registered with id_token_claims=minimal gets them at userinfo only.
    conformIdTokenClaims: false,
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
    extraClientMetadata,
    // Stable per (sector, account), unlinkable across sectors without the salt.
    async pairwiseIdentifier(_ctx, accountId, client) {
      return createHmac('sha256', secrets.pairwiseSalt).update(`${client.sectorIdentifier}\0${accountId}`).digest('base64url');
    },
    async findAccount(ctx, sub) {
      const account = await accountById(sub);
      if (!account || account.disabledAt) return undefined;
      return {
        accountId: account.id,
        async claims(use, scope, requested, rejected) {
          const available =
            use === 'id_token' && ctx.oidc?.client?.['id_token_claims'] === 'minimal'
              ? { sub: account.id }
              : accountClaims(account, account.id);
          const clientId = ctx.oidc?.client?.clientId;
          if (clientId && (use === 'id_token' || use === 'userinfo')) {
            const claims = releasedClaimNames(available, { scope, requested, rejected });
            releases.note({ accountId: account.id, clientId, route: use, claims });
          }
          return available as { sub: string };
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
        policies: registrationPolicies(db, () => new Set(grantTypes)),
      },
      // A service may introspect or revoke only tokens issued to itself: one service must not
      // learn about a user's tokens at another.
      revocation: { enabled: true, allowedPolicy: async (_ctx, client, token) => token.clientId === client.clientId },
      introspection: {
        enabled: true,
        allowedPolicy: async (_ctx, client, token) => {
          if (token.clientId !== client.clientId) return false;
          // An introspection answer names the person by their sub, the only claim it carries.
          if ('accountId' in token && token.accountId)
            releases.note({ accountId: token.accountId, clientId: client.clientId, route: 'introspection', claims: ['sub'] });
          return true;
        },
      },
      clientCredentials: { enabled: true },
      backchannelLogout: { enabled: true },
      userinfo: { enabled: true },
      // RFC 9126: every service may push its request; one registered with --require-par must.
      pushedAuthorizationRequests: { enabled: true, requirePushedAuthorizationRequests: false },
      // RFC 9449: tokens bound to a key the service proves at each use; --dpop-bound makes it mandatory.
      dPoP: { enabled: true },
      // RFC 8628, for TVs and consoles: the person enters at /device the code the device shows.
      // Eight consonants (BCDF-GHJK): easy to read aloud and to type, no words.
      deviceFlow: {
        enabled: true,
        charset: 'base-20',
        mask: '****-****',
        deviceInfo: (ctx): DeviceInfo => describeUserAgent(ctx.get('user-agent')),
        userCodeInputSource: (ctx, form, _out, error) => pages.deviceCodeEntry(ctx, form, error),
        userCodeConfirmSource: (ctx, form, _client, deviceInfo, userCode) =>
          pages.deviceCodeConfirmation(ctx, form, deviceInfo as DeviceInfo, userCode),
        successSource: (ctx) => pages.deviceDone(ctx),
      },
      rpInitiatedLogout: {
        enabled: true,
        logoutSource: (ctx, form) => pages.logoutConfirmation(ctx, form),
        postLogoutSuccessSource: (ctx) => pages.logoutSuccess(ctx),
      },
    },
    renderError: (ctx, out, error) => pages.renderError(ctx, out, error),
    // What discovery adds to oidc-provider's own: front-channel logout is served by
    // http/frontchannel-logout.ts, and an omitted flag would tell services it is not.
    discovery: {
      frontchannel_logout_supported: true,
      frontchannel_logout_session_supported: true,
      ui_locales_supported: [...languages],
      claims_locales_supported: undefined,
      service_documentation: undefined,
      op_policy_uri: config.privacy.policyUrl,
    },
    interactions: { policy: interactionPolicyWithLevels(), url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    // Refresh token rotation is oidc-provider's default policy, kept on purpose (docs/integrating.md §5):
    // - a public client's token (usable without a secret) rotates on every use, a used one presented
    //   again revokes the grant: RFC 9700 §4.14.2 asks rotation or sender-constraining of these;
    // - a confidential or sender-constrained client's token is bound to the client's authentication
    //   and is kept, rotating only past 70 % of its lifetime (so it slides): a refresh retried after a
    //   lost answer (a timeout, an instance killed mid-request) presents it again and succeeds.
    async issueRefreshToken(_ctx, client) {
      return client.grantTypeAllowed('refresh_token');
    },
    loadExistingGrant: existingGrantLoader((accountId, clientId) => latestGrantId(db, accountId, clientId)),
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
      DeviceCode: config.ttl.deviceCode,
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
  built.provider = provider;
  if (serving) {
    // RFC 8628 §3.5: a device polling faster than the interval it was given is told to slow down.
    checkBeforeGrant(provider, deviceCodeGrant, async (ctx) => {
      const deviceCode = ctx.oidc.params?.['device_code'];
      if (typeof deviceCode === 'string' && (await serving.devicePollTooSoon(deviceCode))) throw new errors.SlowDown();
    });
    // The interval the device must keep (RFC 8628 §3.2); oidc-provider sends none, which means 5 s.
    provider.on('device_authorization.success', (ctx) => {
      (ctx.body as Record<string, unknown>)['interval'] = config.devicePollIntervalSeconds;
    });
  }
  compareClientSecretsBy(provider, clientSecretMatches);
  reportAcrBy(provider, (oidc) =>
    reportedAcr(oidc.session?.acr, {
      acrValues: oidc.params?.['acr_values'],
      clientRequiredAcr: oidc.client?.['require_acr'],
    }),
  );
  replaceReplayDetection(provider, (iss, jti, exp) =>
    recordFirstUse(db, createHash('sha256').update(`${iss}${jti}`).digest('base64url'), iss, exp - Math.floor(Date.now() / 1000)),
  );
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
  // A registration refused for its metadata gives its token's use back.
  provider.on(
    'registration_create.error',
    returnSpentUse(db, (error) => logger.warn({ err: error.message }, 'could not return an initial access token use')),
  );
  provider.on('backchannel.error', (_ctx, error, client) =>
    logger.warn({ clientId: client.clientId, err: error.message }, 'back-channel logout failed'),
  );
  return { provider, cookieKeys: secrets.cookieKeys, signingKids: jwks.keys.map((key) => String(key.kid)) };
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
