import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT } from 'jose';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestAccount, createTestClient } from '../helpers/fixtures.js';
import { discoverClient } from '../helpers/oidc-client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { completeAuthorization, UserAgent } from '../helpers/user-agent.js';

/*
 * Standards issue, items 8 and 9: pushed authorization requests (RFC 9126) and DPoP
 * (RFC 9449), through openid-client's own support for them.
 */

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server?.close();
});

let port = 9540;
async function service(overrides: Parameters<typeof createTestClient>[2] = {}) {
  const registered = await createTestClient(server.db, server.validator, {
    redirectUris: [`http://127.0.0.1:${(port += 1)}/cb`],
    ...overrides,
  });
  const config = await discoverClient(server.issuer, registered.client.clientId, registered.clientSecret);
  return { registered, config, redirectUri: registered.client.redirectUris[0]! };
}
type Service = Awaited<ReturnType<typeof service>>;

async function pkce() {
  const verifier = oidc.randomPKCECodeVerifier();
  return { verifier, state: oidc.randomState(), challenge: await oidc.calculatePKCECodeChallenge(verifier) };
}

/** Signs in through the hosted pages with an authorization URL the service built, and redeems the code. */
async function signInWith(target: Service, url: URL, request: { verifier: string; state: string }, options?: oidc.DPoPOptions) {
  const person = await createTestAccount(server.db);
  const { callback } = await completeAuthorization(new UserAgent(), url.href, target.redirectUri, { ...person, consent: 'allow' });
  const tokens = await oidc.authorizationCodeGrant(
    target.config,
    callback,
    { pkceCodeVerifier: request.verifier, expectedState: request.state },
    undefined,
    options,
  );
  return { person, tokens };
}

const parameters = (target: Service, request: { state: string; challenge: string }, scope = 'openid email offline_access') => ({
  redirect_uri: target.redirectUri,
  scope,
  state: request.state,
  code_challenge: request.challenge,
  code_challenge_method: 'S256',
  prompt: 'consent',
});

describe('pushed authorization requests', () => {
  it('are advertised, and a request pushed with openid-client signs in', async () => {
    const target = await service();
    expect(target.config.serverMetadata().pushed_authorization_request_endpoint).toBe(`${server.issuer}/request`);
    const request = await pkce();
    const url = await oidc.buildAuthorizationUrlWithPAR(target.config, parameters(target, request));
    expect([...url.searchParams.keys()].sort()).toEqual(['client_id', 'request_uri']);
    const { tokens, person } = await signInWith(target, url, request);
    expect(tokens.claims()).toMatchObject({ email: person.email });
  });

  it('are the only way in for a service registered with --require-par', async () => {
    const target = await service({ requirePar: true });
    const request = await pkce();
    const plain = oidc.buildAuthorizationUrl(target.config, parameters(target, request));
    const refused = await new UserAgent().request(plain.href);
    // Never redirected with a code: an error, shown or sent back.
    expect(refused.location ?? '').not.toContain('code=');
    expect(`${refused.location ?? ''} ${refused.body}`).toMatch(/Pushed Authorization Request must be used|invalid_request/);
    const pushed = await oidc.buildAuthorizationUrlWithPAR(target.config, parameters(target, request));
    await signInWith(target, pushed, request);
  });
});

describe('DPoP', () => {
  it('binds tokens to the key openid-client proves: userinfo needs the proof, introspection shows the binding', async () => {
    const target = await service();
    const key = await oidc.randomDPoPKeyPair();
    const dpop = oidc.getDPoPHandle(target.config, key);
    const request = await pkce();
    const { tokens, person } = await signInWith(target, oidc.buildAuthorizationUrl(target.config, parameters(target, request)), request, {
      DPoP: dpop,
    });
    expect(tokens.token_type.toLowerCase()).toBe('dpop');
    expect(await oidc.fetchUserInfo(target.config, tokens.access_token, tokens.claims()!.sub, { DPoP: dpop })).toMatchObject({
      email: person.email,
    });
    // As a bearer token, without the proof, it is refused.
    const bearer = await fetch(`${server.issuer}/me`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
    expect(bearer.status).toBe(401);
    const introspected = await oidc.tokenIntrospection(target.config, tokens.access_token);
    expect(introspected.active).toBe(true);
    expect((introspected as { cnf?: { jkt?: string } }).cnf?.jkt).toBe(await calculateJwkThumbprint(await exportJWK(key.publicKey)));
  });

  it('is mandatory for a service registered with --dpop-bound', async () => {
    const target = await service({ dpopBound: true });
    const request = await pkce();
    const refused = await signInWith(target, oidc.buildAuthorizationUrl(target.config, parameters(target, request)), request).catch(
      (error: { error: string; error_description: string }) => error,
    );
    expect(refused).toMatchObject({ error: 'invalid_grant' });
    // The same sign-in with a proof goes through: the proof was what was missing.
    const again = await pkce();
    const { tokens } = await signInWith(target, oidc.buildAuthorizationUrl(target.config, parameters(target, again)), again, {
      DPoP: oidc.getDPoPHandle(target.config, await oidc.randomDPoPKeyPair()),
    });
    expect(tokens.token_type.toLowerCase()).toBe('dpop');
  });

  it("keeps a public client's refresh token bound: without its key, or with another, it does not refresh", async () => {
    const target = await service({ public: true });
    const key = await oidc.randomDPoPKeyPair();
    const request = await pkce();
    const { tokens } = await signInWith(target, oidc.buildAuthorizationUrl(target.config, parameters(target, request)), request, {
      DPoP: oidc.getDPoPHandle(target.config, key),
    });
    await expect(oidc.refreshTokenGrant(target.config, tokens.refresh_token!)).rejects.toMatchObject({
      error: expect.stringMatching(/invalid_/),
    });
    const otherKey = oidc.getDPoPHandle(target.config, await oidc.randomDPoPKeyPair());
    await expect(oidc.refreshTokenGrant(target.config, tokens.refresh_token!, undefined, { DPoP: otherKey })).rejects.toMatchObject({
      error: expect.stringMatching(/invalid_/),
    });
    const refreshed = await oidc.refreshTokenGrant(target.config, tokens.refresh_token!, undefined, {
      DPoP: oidc.getDPoPHandle(target.config, key),
    });
    expect(refreshed.token_type.toLowerCase()).toBe('dpop');
  });

  it('refuses a replayed proof, even sent concurrently, and a proof for another URL', async () => {
    const target = await service();
    const key = await generateKeyPair('ES256', { extractable: true });
    const request = await pkce();
    const { tokens } = await signInWith(target, oidc.buildAuthorizationUrl(target.config, parameters(target, request)), request, {
      DPoP: oidc.getDPoPHandle(target.config, key),
    });
    const jwk = await exportJWK(key.publicKey);
    const ath = Buffer.from(await crypto.subtle.digest('SHA-256', Buffer.from(tokens.access_token))).toString('base64url');
    const proof = (htu: string) =>
      new SignJWT({ htm: 'GET', htu, ath, jti: oidc.randomState() })
        .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk })
        .setIssuedAt()
        .sign(key.privateKey);
    const call = (dpopProof: string) =>
      fetch(`${server.issuer}/me`, { headers: { authorization: `DPoP ${tokens.access_token}`, dpop: dpopProof } }).then(
        (response) => response.status,
      );

    const once = await proof(`${server.issuer}/me`);
    expect(await call(once)).toBe(200);
    expect(await call(once)).toBe(401);
    const racing = await proof(`${server.issuer}/me`);
    const statuses = await Promise.all(Array.from({ length: 8 }, () => call(racing)));
    expect(statuses.filter((status) => status === 200)).toHaveLength(1);
    expect(await call(await proof(`${server.issuer}/token`))).toBe(401);
  });
});
