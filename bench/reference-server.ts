/**
 * The REFERENCE the benchmark compares us with: oidc-provider with an in-memory adapter
 * (its own MemoryAdapter's semantics, without its 1000-entry LRU) and the same provider settings as src/oidc/provider.ts (features, TTLs, claims,
 * pairwise subjects, PKCE, refresh rotation, first-party consent skip), behind a minimal
 * login/consent handler that does one argon2id verify against the same hashes. No
 * Postgres, no security headers, no CSRF, no rate limits, no audit log, no request log,
 * no metrics: what is left is the floor oidc-provider itself sets.
 *
 * Keep the configuration in step with src/oidc/provider.ts by hand.
 *
 * Env: PORT, FIXTURES (JSON file written by the bench: accounts and client metadata).
 */
import { createHmac, generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
import Koa from 'koa';
import Router from '@koa/router';
import { bodyParser } from '@koa/bodyparser';
import mount from 'koa-mount';
import argon2 from 'argon2';
import Provider, { type Adapter, type Configuration } from 'oidc-provider';
import { claimsByScope, supportedScopes } from '../src/accounts/claims.js';
import { loadConfig } from '../src/config.js';
import { existingGrantLoader } from '../src/oidc/grants.js';
import type { Fixtures } from './lib/fixtures.js';
import { findAccountGrant, MapAdapter } from './lib/memory-adapter.js';

const port = Number(process.env['PORT'] ?? 3100);
const issuer = `http://127.0.0.1:${port}`;
const fixtures = JSON.parse(readFileSync(process.env['FIXTURES']!, 'utf8')) as Fixtures;
const ttl = loadConfig({}).ttl;

const accountsById = new Map(fixtures.accounts.map((account) => [account.id, account]));
const accountsByEmail = new Map(fixtures.accounts.map((account) => [account.email.toLowerCase(), account]));
const pairwiseSalt = randomBytes(32).toString('base64url');
const cookieKeys = [randomBytes(32).toString('base64url')];

function privateJwk(kind: 'rsa' | 'ec', alg: string) {
  const { privateKey } =
    kind === 'rsa' ? generateKeyPairSync('rsa', { modulusLength: 2048 }) : generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { ...privateKey.export({ format: 'jwk' }), kid: randomBytes(12).toString('base64url'), alg, use: 'sig' };
}

const configuration: Configuration = {
  adapter: MapAdapter,
  clients: [],
  jwks: { keys: [privateJwk('rsa', 'RS256'), privateJwk('ec', 'ES256')] } as Configuration['jwks'],
  cookies: {
    keys: cookieKeys,
    long: { httpOnly: true, sameSite: 'lax', signed: true },
    short: { httpOnly: true, sameSite: 'lax', signed: true },
  },
  scopes: [...supportedScopes],
  claims: Object.fromEntries(Object.entries(claimsByScope).map(([scope, claims]) => [scope, [...claims]])),
  conformIdTokenClaims: true,
  subjectTypes: ['public', 'pairwise'],
  responseTypes: ['code'],
  clientDefaults: {
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
    id_token_signed_response_alg: 'RS256',
    subject_type: 'pairwise',
  },
  extraClientMetadata: {
    properties: ['first_party'],
    validator(_ctx, key, value, metadata) {
      if (key === 'first_party' && value === undefined) metadata['first_party'] = false;
    },
  },
  async pairwiseIdentifier(_ctx, accountId, client) {
    return createHmac('sha256', pairwiseSalt).update(`${client.sectorIdentifier}\0${accountId}`).digest('base64url');
  },
  async findAccount(_ctx, sub) {
    const account = accountsById.get(sub);
    if (!account) return undefined;
    return {
      accountId: account.id,
      async claims() {
        return {
          sub: account.id,
          email: account.email,
          email_verified: true,
          name: account.name,
          given_name: account.givenName,
          family_name: account.familyName,
          locale: 'en',
          updated_at: 1700000000,
        };
      },
    };
  },
  pkce: { required: (_ctx, client) => client.clientAuthMethod === 'none' },
  features: {
    devInteractions: { enabled: false },
    revocation: { enabled: true, allowedPolicy: async (_ctx, client, token) => token.clientId === client.clientId },
    introspection: { enabled: true, allowedPolicy: async (_ctx, client, token) => token.clientId === client.clientId },
    clientCredentials: { enabled: true },
    backchannelLogout: { enabled: true },
    userinfo: { enabled: true },
    rpInitiatedLogout: { enabled: true },
  },
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  // rotateRefreshToken: oidc-provider's default, as ours (public clients rotate, confidential ones keep theirs).
  async issueRefreshToken(_ctx, client) {
    return client.grantTypeAllowed('refresh_token');
  },
  // The same first-party consent policy as ours, so both do the same protocol work.
  loadExistingGrant: existingGrantLoader(findAccountGrant),
  ttl: {
    AccessToken: ttl.accessToken,
    AuthorizationCode: ttl.authorizationCode,
    ClientCredentials: ttl.clientCredentials,
    IdToken: ttl.idToken,
    RefreshToken: ttl.refreshToken,
    Interaction: ttl.interaction,
    Session: ttl.session,
    Grant: ttl.grant,
  },
  enableHttpPostMethods: false,
};

const provider = new Provider(issuer, configuration);
// Stored through the adapter, as ours are, so Client.find takes the same path (adapter → cached Client).
const clientStore = (provider.Client as unknown as { adapter: Adapter }).adapter;
for (const metadata of fixtures.clients) await clientStore.upsert(String(metadata['client_id']), metadata, undefined as unknown as number);

const form = bodyParser({ enableTypes: ['form'] });
const router = new Router({ prefix: '/interaction/:uid' });
router.get('/', async (ctx) => {
  const details = await provider.interactionDetails(ctx.req, ctx.res);
  ctx.type = 'html';
  ctx.body = `<form method="post" action="/interaction/${details.uid}/${details.prompt.name === 'login' ? 'login' : 'consent'}"></form>`;
});
router.post('/login', form, async (ctx) => {
  await provider.interactionDetails(ctx.req, ctx.res);
  const body = ctx.request.body as { email?: string; password?: string };
  const account = accountsByEmail.get(String(body.email ?? '').toLowerCase());
  const valid = await argon2.verify(account?.passwordHash ?? fixtures.accounts[0]!.passwordHash, String(body.password ?? ''));
  if (!account || !valid) {
    ctx.status = 401;
    return;
  }
  ctx.status = 303;
  ctx.redirect(await provider.interactionResult(ctx.req, ctx.res, { login: { accountId: account.id, amr: ['pwd'] } }));
});
router.post('/consent', form, async (ctx) => {
  const details = await provider.interactionDetails(ctx.req, ctx.res);
  const accountId = details.session!.accountId;
  const grant = details.grantId
    ? (await provider.Grant.find(details.grantId))!
    : new provider.Grant({ accountId, clientId: String(details.params['client_id']) });
  const missing = details.prompt.details as { missingOIDCScope?: string[]; missingOIDCClaims?: string[] };
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  const grantId = await grant.save();
  ctx.status = 303;
  ctx.redirect(
    await provider.interactionResult(ctx.req, ctx.res, { consent: details.grantId ? {} : { grantId } }, { mergeWithLastSubmission: true }),
  );
});

const app = new Koa();
app.keys = cookieKeys;
app.use(router.routes());
app.use(mount(provider));
const server = createServer(app.callback());
server.keepAliveTimeout = 5000;
server.listen(port, '127.0.0.1', () => process.stdout.write(`reference ready at ${issuer}\n`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
