import { randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey as JoseKey } from 'jose';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { deviceCodeGrant, type ClientRegistration } from '../../src/clients/store.js';
import { createTestAccount, createTestClient } from '../helpers/fixtures.js';
import { LogoutListener, waitFor } from '../helpers/listener.js';
import { discoverClient, exchangeCode, startAuthorization } from '../helpers/oidc-client.js';
import { cliScript } from '../helpers/processes.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { completeAuthorization, formActions, hiddenField, UserAgent } from '../helpers/user-agent.js';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

/*
 * Standards issue, item 4: discovery tells the truth. Every key discovery publishes is known
 * here and every value is exercised against the server; a feature the server implements
 * but discovery leaves out fails the first test.
 */

let server: TestServer;
let discovery: Record<string, unknown>;
let listener: LogoutListener;
let person: Awaited<ReturnType<typeof createTestAccount>>;

beforeAll(async () => {
  server = await startTestServer({ env: { DYNAMIC_REGISTRATION: 'true' } });
  listener = await new LogoutListener().start();
  discovery = (await (await fetch(`${server.issuer}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
  person = await createTestAccount(server.db, { locale: 'ja', zoneinfo: 'Asia/Tokyo' });
});
afterAll(async () => {
  await server?.close();
  await listener?.stop();
});

const list = (key: string) => discovery[key] as string[];

let port = 9950;
async function service(overrides: Partial<ClientRegistration> = {}) {
  const registered = await createTestClient(server.db, server.validator, {
    redirectUris: [`http://127.0.0.1:${(port += 1)}/cb`],
    postLogoutRedirectUris: [`http://127.0.0.1:${port}/bye`],
    ...overrides,
  });
  const config = await discoverClient(server.issuer, registered.client.clientId, registered.clientSecret);
  return { registered, config, redirectUri: registered.client.redirectUris[0]! };
}

async function signIn(target: Awaited<ReturnType<typeof service>>, scope: string, agent = new UserAgent(), extra = '') {
  const request = await startAuthorization(target.config, target.redirectUri, scope);
  const { callback } = await completeAuthorization(agent, `${request.url.href}&prompt=consent${extra}`, target.redirectUri, {
    ...person,
    consent: 'allow',
  });
  return { callback, tokens: await exchangeCode(target.config, callback, request), agent };
}

/** What the token endpoint answers to a client_credentials request with these extra fields and headers. */
async function clientCredentials(body: Record<string, string>, headers: Record<string, string> = {}) {
  const response = await fetch(`${server.issuer}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams({ grant_type: 'client_credentials', ...body }),
  });
  return { status: response.status, body: (await response.json()) as Record<string, string> };
}

describe('discovery', () => {
  it('publishes exactly the keys this test exercises, among them every feature the server implements', () => {
    const exercised = [
      'issuer',
      'acr_values_supported',
      'authorization_endpoint',
      'token_endpoint',
      'userinfo_endpoint',
      'jwks_uri',
      'registration_endpoint',
      'end_session_endpoint',
      'introspection_endpoint',
      'revocation_endpoint',
      'pushed_authorization_request_endpoint',
      'device_authorization_endpoint',
      'response_types_supported',
      'response_modes_supported',
      'grant_types_supported',
      'scopes_supported',
      'claims_supported',
      'claim_types_supported',
      'claims_parameter_supported',
      'subject_types_supported',
      'token_endpoint_auth_methods_supported',
      'token_endpoint_auth_signing_alg_values_supported',
      'id_token_signing_alg_values_supported',
      'dpop_signing_alg_values_supported',
      'code_challenge_methods_supported',
      'authorization_response_iss_parameter_supported',
      'request_uri_parameter_supported',
      'backchannel_logout_supported',
      'backchannel_logout_session_supported',
      'frontchannel_logout_supported',
      'frontchannel_logout_session_supported',
      'ui_locales_supported',
    ];
    expect(Object.keys(discovery).sort()).toEqual(exercised.sort());
    expect(discovery).toMatchObject({
      issuer: server.issuer,
      backchannel_logout_supported: true,
      backchannel_logout_session_supported: true,
      frontchannel_logout_supported: true,
      frontchannel_logout_session_supported: true,
      authorization_response_iss_parameter_supported: true,
      claims_parameter_supported: false,
      request_uri_parameter_supported: false,
    });
  });

  it('names endpoints on the issuer that answer', async () => {
    for (const key of Object.keys(discovery).filter((name) => name.endsWith('_endpoint') || name === 'jwks_uri')) {
      const url = String(discovery[key]);
      expect(url.startsWith(`${server.issuer}/`), key).toBe(true);
      const method = ['authorization_endpoint', 'userinfo_endpoint', 'jwks_uri', 'end_session_endpoint'].includes(key) ? 'GET' : 'POST';
      expect((await fetch(url, { method, redirect: 'manual' })).status, key).not.toBe(404);
    }
  });

  it('response_types, response_modes, PKCE and the iss parameter: code in each response mode, with S256; plain is refused', async () => {
    expect(list('response_types_supported')).toEqual(['code']);
    expect(list('code_challenge_methods_supported')).toEqual(['S256']);
    const target = await service();
    // Signed in and consented once; each mode then answers at once, on its own channel.
    const { agent } = await signIn(target, 'openid');
    for (const mode of list('response_modes_supported')) {
      const request = await startAuthorization(target.config, target.redirectUri, 'openid');
      const page = await agent.follow(`${request.url.href}&response_mode=${mode}`, target.redirectUri);
      let params: URLSearchParams;
      if ('stoppedAt' in page) {
        const location = new URL(page.stoppedAt);
        params = mode === 'fragment' ? new URLSearchParams(location.hash.slice(1)) : location.searchParams;
        expect(mode).not.toBe('form_post');
      } else {
        // form_post: a page whose form posts the answer to the service.
        expect(mode).toBe('form_post');
        expect(page.body).toContain(`action="${target.redirectUri}"`);
        params = new URLSearchParams([...page.body.matchAll(/name="(\w+)" value="([^"]*)"/g)].map((m): [string, string] => [m[1]!, m[2]!]));
      }
      expect(params.get('code'), mode).toEqual(expect.any(String));
      expect(params.get('iss'), mode).toBe(server.issuer);
      const callback = new URL(target.redirectUri);
      for (const [name, value] of params) callback.searchParams.set(name, value);
      await exchangeCode(target.config, callback, request);
    }
    const plain = new URL(`${server.issuer}/auth`);
    plain.search = new URLSearchParams({
      client_id: target.registered.client.clientId,
      redirect_uri: target.redirectUri,
      response_type: 'code',
      scope: 'openid',
      code_challenge: 'a'.repeat(43),
      code_challenge_method: 'plain',
    }).toString();
    const refusedPlain = await new UserAgent().request(plain.href);
    expect(refusedPlain.location ?? '').toMatch(/error=invalid_request/);
    const token = new URL(plain);
    token.searchParams.set('response_type', 'token');
    token.searchParams.set('code_challenge_method', 'S256');
    expect((await new UserAgent().request(token.href)).location ?? '').toMatch(/error=unsupported_response_type/);
  });

  it('scopes and claims: every scope is grantable and every claim reaches the service, in the ID token or at userinfo', async () => {
    const target = await service({ scopes: ['openid', 'profile', 'email', 'offline_access'] });
    // max_age asks for auth_time, which a service may also require; every other claim comes with the scopes.
    const { tokens } = await signIn(target, list('scopes_supported').join(' '), new UserAgent(), '&max_age=600');
    expect(tokens.refresh_token).toEqual(expect.any(String)); // offline_access
    const idToken = tokens.claims()!;
    const userinfo = await oidc.fetchUserInfo(target.config, tokens.access_token, idToken.sub);
    for (const claim of list('claims_supported')) expect(claim in idToken || claim in userinfo, claim).toBe(true);
    expect(list('claim_types_supported')).toEqual(['normal']);
    // The level of every sign-in is one of those advertised (two-step.test.ts asks for each).
    expect(list('acr_values_supported')).toContain(idToken.acr);
    // claims_parameter_supported is false: a claims request adds nothing beyond the scopes.
    const narrow = await service({ scopes: ['openid', 'email'] });
    const request = await startAuthorization(narrow.config, narrow.redirectUri, 'openid');
    const url = `${request.url.href}&claims=${encodeURIComponent(JSON.stringify({ id_token: { email: { essential: true } } }))}&prompt=consent`;
    const { callback } = await completeAuthorization(new UserAgent(), url, narrow.redirectUri, { ...person, consent: 'allow' });
    expect((await exchangeCode(narrow.config, callback, request)).claims()).not.toHaveProperty('email');
  });

  it('subject types: a public service sees the account id, a pairwise one its own sub', async () => {
    expect(list('subject_types_supported').sort()).toEqual(['pairwise', 'public']);
    const publicSub = (await signIn(await service({ subjectType: 'public' }), 'openid')).tokens.claims()!.sub;
    const pairwiseSub = (await signIn(await service({ subjectType: 'pairwise' }), 'openid')).tokens.claims()!.sub;
    expect(publicSub).toBe(person.id);
    expect(pairwiseSub).not.toBe(person.id);
  });

  it('ID token algorithms: each signs the ID tokens of a service registered for it', async () => {
    for (const alg of list('id_token_signing_alg_values_supported')) {
      const { tokens } = await signIn(await service({ idTokenSignedResponseAlg: alg as 'RS256' }), 'openid');
      expect(JSON.parse(Buffer.from(tokens.id_token!.split('.')[0]!, 'base64url').toString()).alg, alg).toBe(alg);
    }
  });

  it('token endpoint authentication: basic, post, none, and private_key_jwt with each advertised algorithm', async () => {
    const methods = list('token_endpoint_auth_methods_supported');
    expect(methods.sort()).toEqual(['client_secret_basic', 'client_secret_post', 'none', 'private_key_jwt']);
    const basic = await service({ grantTypes: ['client_credentials'], redirectUris: [] });
    expect(
      (
        await clientCredentials(
          {},
          {
            authorization: `Basic ${Buffer.from(`${basic.registered.client.clientId}:${basic.registered.clientSecret}`).toString('base64')}`,
          },
        )
      ).status,
    ).toBe(200);
    const post = await service({ grantTypes: ['client_credentials'], redirectUris: [], authMethod: 'client_secret_post' });
    expect(
      (await clientCredentials({ client_id: post.registered.client.clientId, client_secret: post.registered.clientSecret! })).status,
    ).toBe(200);
    const none = await service({ public: true });
    expect((await signIn(none, 'openid')).tokens.access_token).toEqual(expect.any(String));

    // private_key_jwt: a service that registers itself with its public keys, one per algorithm family.
    const keys: Record<string, { privateKey: JoseKey; publicKey: JoseKey }> = {};
    for (const alg of list('token_endpoint_auth_signing_alg_values_supported'))
      keys[alg] = await generateKeyPair(alg, { extractable: true });
    const jwks = await Promise.all(
      Object.entries(keys).map(async ([alg, pair]) => ({ ...(await exportJWK(pair.publicKey)), kid: alg, alg })),
    );
    const token = await initialToken();
    const registration = await fetch(`${server.issuer}/reg`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({
        client_name: 'Keys',
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        token_endpoint_auth_method: 'private_key_jwt',
        jwks: { keys: jwks },
      }),
    });
    expect(registration.status).toBe(201);
    const { client_id: clientId } = (await registration.json()) as { client_id: string };
    for (const [alg, pair] of Object.entries(keys)) {
      const assertion = await new SignJWT({})
        .setProtectedHeader({ alg, kid: alg })
        .setIssuer(clientId)
        .setSubject(clientId)
        .setAudience(server.issuer)
        .setJti(randomUUID())
        .setIssuedAt()
        .setExpirationTime('1m')
        .sign(pair.privateKey);
      const answer = await clientCredentials({
        client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
        client_assertion: assertion,
      });
      expect(answer.status, `${alg}: ${JSON.stringify(answer.body)}`).toBe(200);
    }
  });

  it('grant types: the code, refresh, client-credentials and device grants each issue tokens', async () => {
    expect(list('grant_types_supported').sort()).toEqual(
      ['authorization_code', 'client_credentials', 'refresh_token', deviceCodeGrant].sort(),
    );
    const target = await service({ scopes: ['openid', 'offline_access'] });
    const { tokens } = await signIn(target, 'openid offline_access');
    expect((await oidc.refreshTokenGrant(target.config, tokens.refresh_token!)).access_token).toEqual(expect.any(String));
    const backend = await service({ grantTypes: ['client_credentials'], redirectUris: [] });
    expect((await oidc.clientCredentialsGrant(backend.config)).access_token).toEqual(expect.any(String));
    const tv = await service({ public: true, redirectUris: [], grantTypes: [deviceCodeGrant] });
    const started = await oidc.initiateDeviceAuthorization(tv.config, { scope: 'openid' });
    expect(started.verification_uri).toBe(discovery['device_authorization_endpoint'] ? `${server.issuer}/device` : undefined);
  });

  it('DPoP: a proof with each advertised algorithm binds the token', async () => {
    const backend = await service({ grantTypes: ['client_credentials'], redirectUris: [] });
    const basic = `Basic ${Buffer.from(`${backend.registered.client.clientId}:${backend.registered.clientSecret}`).toString('base64')}`;
    for (const alg of list('dpop_signing_alg_values_supported')) {
      const pair = await generateKeyPair(alg, { extractable: true });
      const proof = await new SignJWT({ htm: 'POST', htu: `${server.issuer}/token`, jti: randomUUID() })
        .setProtectedHeader({ alg, typ: 'dpop+jwt', jwk: await exportJWK(pair.publicKey) })
        .setIssuedAt()
        .sign(pair.privateKey);
      const answer = await clientCredentials({}, { authorization: basic, dpop: proof });
      expect(answer.status, `${alg}: ${JSON.stringify(answer.body)}`).toBe(200);
      expect(answer.body['token_type'], alg).toBe('DPoP');
    }
  });

  it('pushed authorization requests, revocation, introspection and userinfo do what they say', async () => {
    const target = await service();
    const request = { verifier: oidc.randomPKCECodeVerifier(), state: oidc.randomState(), nonce: oidc.randomNonce() };
    const url = await oidc.buildAuthorizationUrlWithPAR(target.config, {
      redirect_uri: target.redirectUri,
      scope: 'openid email',
      state: request.state,
      nonce: request.nonce,
      code_challenge: await oidc.calculatePKCECodeChallenge(request.verifier),
      code_challenge_method: 'S256',
      prompt: 'consent',
    });
    const { callback } = await completeAuthorization(new UserAgent(), url.href, target.redirectUri, { ...person, consent: 'allow' });
    const tokens = await exchangeCode(target.config, callback, request);
    expect(await oidc.fetchUserInfo(target.config, tokens.access_token, tokens.claims()!.sub)).toMatchObject({ email: person.email });
    expect((await oidc.tokenIntrospection(target.config, tokens.access_token)).active).toBe(true);
    await oidc.tokenRevocation(target.config, tokens.access_token);
    expect((await oidc.tokenIntrospection(target.config, tokens.access_token)).active).toBe(false);
  });

  it('back- and front-channel logout with sessions: the services hear of the end of the session by its sid', async () => {
    const agent = new UserAgent();
    const back = await service({ backchannelLogoutUri: listener.url });
    const front = await service({ frontchannelLogoutUri: `http://127.0.0.1:${(port += 1)}/front` });
    const { tokens: backTokens } = await signIn(back, 'openid', agent);
    const { tokens: frontTokens } = await signIn(front, 'openid', agent);
    const confirm = await agent.request(
      oidc.buildEndSessionUrl(back.config, {
        id_token_hint: backTokens.id_token!,
        post_logout_redirect_uri: back.registered.client.postLogoutRedirectUris[0]!,
      }).href,
    );
    const done = await agent.request(`${server.issuer}/session/end/confirm`, {
      form: { xsrf: hiddenField(confirm.body, 'xsrf'), logout: 'yes' },
    });
    const sid = frontTokens.claims()!['sid'] as string;
    expect(done.body).toContain(`iss=${encodeURIComponent(server.issuer)}`);
    expect(done.body).toContain(`sid=${sid}`);
    await waitFor(() => listener.tokens.length > 0);
    const logoutToken = JSON.parse(Buffer.from(listener.tokens.at(-1)!.split('.')[1]!, 'base64url').toString()) as { sid: string };
    expect(logoutToken.sid).toBe(backTokens.claims()!['sid']);
  });

  it('ui_locales: each advertised language is spoken by the sign-in page', async () => {
    const target = await service();
    for (const language of list('ui_locales_supported')) {
      const request = await startAuthorization(target.config, target.redirectUri, 'openid');
      const page = await new UserAgent().follow(`${request.url.href}&ui_locales=${language}`, target.redirectUri);
      expect('body' in page && page.body, language).toContain(`<html lang="${language}">`);
      expect('body' in page && formActions(page.body).some((action) => action.endsWith('/login'))).toBe(true);
    }
  });
});

async function initialToken(): Promise<string> {
  const { stdout } = await promisify(execFile)(process.execPath, [cliScript, 'clients', 'initial-token', '--json'], {
    env: { PATH: process.env['PATH'] ?? '', DATABASE_URL: inject('databaseUrl'), LOG_LEVEL: 'warn' },
  });
  return (JSON.parse(stdout) as { initialAccessToken: string }).initialAccessToken;
}
