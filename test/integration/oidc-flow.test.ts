import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestAccount, createTestClient } from '../helpers/fixtures.js';
import { discoverClient, startAuthorization, exchangeCode } from '../helpers/oidc-client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { completeAuthorization, UserAgent } from '../helpers/user-agent.js';

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server?.close();
});

const discover = (clientId: string, secret: string | undefined) => discoverClient(server.issuer, clientId, secret);

describe('OpenID Connect with a real relying-party library', () => {
  it('completes login, consent, code exchange, userinfo, refresh, introspection, revocation and logout', async () => {
    const account = await createTestAccount(server.db);
    const { client, clientSecret } = await createTestClient(server.db, server.validator, { subjectType: 'pairwise' });
    const config = await discover(client.clientId, clientSecret);
    const redirectUri = client.redirectUris[0]!;
    const agent = new UserAgent();

    const request = await startAuthorization(config, redirectUri, 'openid email');
    const { callback, pages } = await completeAuthorization(agent, request.url.href, redirectUri, {
      email: account.email.toUpperCase(),
      password: account.password,
      consent: 'allow',
    });
    expect(pages).toEqual(['login', 'consent']);

    const tokens = await exchangeCode(config, callback, request);
    const idClaims = tokens.claims()!;
    expect(idClaims.iss).toBe(server.issuer);
    expect(idClaims.aud).toBe(client.clientId);
    expect(idClaims.sub).not.toBe(account.id);

    // Only the granted scopes' claims: email, not profile.
    const userinfo = await oidc.fetchUserInfo(config, tokens.access_token, idClaims.sub);
    expect(userinfo).toEqual({ sub: idClaims.sub, email: account.email, email_verified: true });

    // Refresh: a confidential client keeps its refresh token (bound to its secret) and gets fresh
    // access tokens; rotation and reuse detection of public clients' tokens are in replay.test.ts.
    expect(tokens.refresh_token).toEqual(expect.any(String));
    const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
    expect(refreshed.refresh_token).toBe(tokens.refresh_token);
    expect(refreshed.access_token).not.toBe(tokens.access_token);
    expect(await oidc.fetchUserInfo(config, refreshed.access_token, idClaims.sub)).toMatchObject({ sub: idClaims.sub });

    // Fresh grant for introspection and revocation.
    const second = await startAuthorization(config, redirectUri, 'openid profile');
    const again = await completeAuthorization(agent, second.url.href, redirectUri, {
      email: account.email,
      password: account.password,
      consent: 'allow',
    });
    expect(again.pages).toEqual(['consent']); // already signed in; profile is a new scope
    const tokens2 = await exchangeCode(config, again.callback, second);
    const profile = await oidc.fetchUserInfo(config, tokens2.access_token, tokens2.claims()!.sub);
    expect(profile).toMatchObject({
      name: account.name,
      given_name: 'Test',
      family_name: 'Person',
      locale: 'en',
      updated_at: expect.any(Number),
    });
    expect(profile).not.toHaveProperty('email');

    const active = await oidc.tokenIntrospection(config, tokens2.access_token);
    expect(active).toMatchObject({ active: true, client_id: client.clientId, sub: tokens2.claims()!.sub });
    await oidc.tokenRevocation(config, tokens2.access_token);
    expect(await oidc.tokenIntrospection(config, tokens2.access_token)).toMatchObject({ active: false });
    await expect(oidc.fetchUserInfo(config, tokens2.access_token, tokens2.claims()!.sub)).rejects.toBeDefined();

    // RP-initiated logout with id_token_hint and a registered post-logout URI.
    const endSession = oidc.buildEndSessionUrl(config, {
      id_token_hint: tokens2.id_token!,
      post_logout_redirect_uri: client.postLogoutRedirectUris[0]!,
      state: 'bye',
    });
    const confirm = await agent.request(endSession.href);
    expect(confirm.status).toBe(200);
    expect(confirm.body).toContain('Sign out');
    const xsrf = /name="xsrf" value="([^"]+)"/.exec(confirm.body)![1]!;
    const action = /action="([^"]+)"/.exec(confirm.body)![1]!;
    const done = await agent.follow(new URL(action, server.issuer).href, client.postLogoutRedirectUris[0]!, {
      form: { xsrf, logout: 'yes' },
    });
    expect(done).toEqual({ stoppedAt: `${client.postLogoutRedirectUris[0]}?state=bye` });

    // Signed out: the next authorization asks for the password again.
    const third = await startAuthorization(config, redirectUri, 'openid');
    const login = await agent.follow(third.url.href, redirectUri);
    expect('body' in login && login.body).toContain('name="password"');
  });

  it('gives a second service a code without a password prompt (SSO), with a different pairwise sub', async () => {
    const account = await createTestAccount(server.db);
    const first = await createTestClient(server.db, server.validator, { redirectUris: ['http://127.0.0.1:9001/cb'] });
    const second = await createTestClient(server.db, server.validator, { redirectUris: ['http://127.0.0.1:9002/cb'] });
    const agent = new UserAgent();
    const subs: string[] = [];
    for (const [index, registered] of [first, second].entries()) {
      const config = await discover(registered.client.clientId, registered.clientSecret);
      const redirectUri = registered.client.redirectUris[0]!;
      const request = await startAuthorization(config, redirectUri, 'openid');
      const { callback, pages } = await completeAuthorization(agent, request.url.href, redirectUri, {
        email: account.email,
        password: account.password,
        consent: 'allow',
      });
      expect(pages).toEqual(index === 0 ? ['login', 'consent'] : ['consent']);
      const tokens = await exchangeCode(config, callback, request);
      subs.push(tokens.claims()!.sub);
    }
    expect(subs[0]).not.toBe(subs[1]);
  });

  it('gives public-subject services the same sub, and skips consent for first-party services', async () => {
    const account = await createTestAccount(server.db);
    const a = await createTestClient(server.db, server.validator, {
      redirectUris: ['http://127.0.0.1:9003/cb'],
      subjectType: 'public',
      firstParty: true,
    });
    const b = await createTestClient(server.db, server.validator, {
      redirectUris: ['http://127.0.0.1:9004/cb'],
      subjectType: 'public',
      firstParty: true,
    });
    const agent = new UserAgent();
    const subs: string[] = [];
    const pagesSeen: string[][] = [];
    for (const registered of [a, b]) {
      const config = await discover(registered.client.clientId, registered.clientSecret);
      const redirectUri = registered.client.redirectUris[0]!;
      const request = await startAuthorization(config, redirectUri, 'openid profile');
      const { callback, pages } = await completeAuthorization(agent, request.url.href, redirectUri, {
        email: account.email,
        password: account.password,
      });
      pagesSeen.push(pages);
      const tokens = await exchangeCode(config, callback, request);
      subs.push(tokens.claims()!.sub);
      expect(await oidc.fetchUserInfo(config, tokens.access_token, tokens.claims()!.sub)).toMatchObject({ name: account.name });
    }
    expect(pagesSeen).toEqual([['login'], []]);
    expect(subs).toEqual([account.id, account.id]);
  });

  it('lets a public client (PKCE, no secret) sign in and requires PKCE from it', async () => {
    const account = await createTestAccount(server.db);
    const { client, clientSecret } = await createTestClient(server.db, server.validator, {
      public: true,
      redirectUris: ['http://127.0.0.1:9005/cb'],
    });
    expect(clientSecret).toBeUndefined();
    const config = await discover(client.clientId, undefined);
    const redirectUri = client.redirectUris[0]!;

    const withoutPkce = oidc.buildAuthorizationUrl(config, { redirect_uri: redirectUri, scope: 'openid', state: 's' });
    const refused = await new UserAgent().follow(withoutPkce.href, redirectUri);
    expect('stoppedAt' in refused && new URL(refused.stoppedAt).searchParams.get('error')).toBe('invalid_request');

    const request = await startAuthorization(config, redirectUri, 'openid email');
    const { callback } = await completeAuthorization(new UserAgent(), request.url.href, redirectUri, {
      email: account.email,
      password: account.password,
      consent: 'allow',
    });
    const tokens = await exchangeCode(config, callback, request);
    expect(tokens.claims()!.aud).toBe(client.clientId);
  });

  it('returns access_denied to the service when the user denies consent', async () => {
    const account = await createTestAccount(server.db);
    const { client, clientSecret } = await createTestClient(server.db, server.validator, { redirectUris: ['http://127.0.0.1:9006/cb'] });
    const config = await discover(client.clientId, clientSecret);
    const request = await startAuthorization(config, client.redirectUris[0]!, 'openid email');
    const { callback } = await completeAuthorization(new UserAgent(), request.url.href, client.redirectUris[0]!, {
      email: account.email,
      password: account.password,
      consent: 'deny',
    });
    expect(callback.searchParams.get('error')).toBe('access_denied');
    expect(callback.searchParams.get('state')).toBe(request.state);
  });

  it('issues client_credentials tokens to a confidential service', async () => {
    const { client, clientSecret } = await createTestClient(server.db, server.validator, {
      redirectUris: [],
      postLogoutRedirectUris: [],
      grantTypes: ['client_credentials'],
      scopes: ['openid'],
    });
    const config = await discover(client.clientId, clientSecret);
    const tokens = await oidc.clientCredentialsGrant(config);
    expect(tokens.access_token).toEqual(expect.any(String));
    expect(tokens.token_type.toLowerCase()).toBe('bearer');
    const wrong = await discover(client.clientId, 'not-the-secret');
    await expect(oidc.clientCredentialsGrant(wrong)).rejects.toMatchObject({
      status: 401,
      cause: [{ parameters: { error: 'invalid_client' } }],
    });
  });
});
