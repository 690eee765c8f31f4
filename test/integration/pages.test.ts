import * as oidc from 'openid-client';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestAccount, createTestClient, uniqueEmail } from '../helpers/fixtures.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { completeAuthorization, formActions, hiddenField, UserAgent } from '../helpers/user-agent.js';
import type { RegisteredClient } from '../../src/clients/store.js';

let server: TestServer;
let registered: RegisteredClient;

beforeAll(async () => {
  server = await startTestServer();
  registered = await createTestClient(server.db, server.validator, { redirectUris: ['http://127.0.0.1:9100/cb'] });
});
afterAll(async () => {
  await server?.close();
});

function authorizationUrl(extra: Record<string, string> = {}): string {
  const params = new URLSearchParams({
    client_id: registered.client.clientId,
    redirect_uri: registered.client.redirectUris[0]!,
    response_type: 'code',
    scope: 'openid email',
    state: 'st',
    code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
    code_challenge_method: 'S256',
    ...extra,
  });
  return `${server.issuer}/auth?${params}`;
}

/** Opens the login page of a fresh interaction and returns its agent, page and uid. */
async function openLoginPage() {
  const agent = new UserAgent();
  const page = await agent.follow(authorizationUrl(), registered.client.redirectUris[0]!);
  if ('stoppedAt' in page) throw new Error(`unexpected redirect to ${page.stoppedAt}`);
  const loginAction = formActions(page.body).find((action) => action.endsWith('/login'))!;
  return { agent, page, loginUrl: server.issuer + loginAction, uid: loginAction.split('/')[2]! };
}

describe('hosted pages', () => {
  it('serves a login form with the contract field names, a CSRF token and strict headers', async () => {
    const { page } = await openLoginPage();
    expect(page.status).toBe(200);
    expect(page.body).toContain('name="email"');
    expect(page.body).toContain('name="password"');
    expect(hiddenField(page.body, '_csrf').length).toBeGreaterThan(10);
    expect(page.body).toContain(registered.client.name);
    const csp = page.headers.get('content-security-policy')!;
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(page.headers.get('x-frame-options')).toBe('DENY');
    expect(page.headers.get('cache-control')).toBe('no-store');
    expect(page.headers.get('x-content-type-options')).toBe('nosniff');
    expect(page.headers.get('strict-transport-security')).toBeNull(); // http issuer: no HSTS
  });

  it('sets httpOnly SameSite cookies on the interaction and CSRF secret', async () => {
    const agent = new UserAgent();
    const first = await agent.request(authorizationUrl());
    const cookies = first.headers.getSetCookie();
    expect(cookies.some((c) => c.startsWith('_interaction='))).toBe(true);
    for (const cookie of cookies) {
      expect(cookie.toLowerCase()).toContain('httponly');
      expect(cookie.toLowerCase()).toContain('samesite=lax');
    }
    const page = await agent.request(first.location!);
    for (const cookie of page.headers.getSetCookie()) {
      expect(cookie.toLowerCase()).toContain('httponly');
      expect(cookie.toLowerCase()).toContain('samesite=lax');
    }
  });

  it('rejects a login post without a valid CSRF token and does not sign in', async () => {
    const account = await createTestAccount(server.db);
    const { agent, loginUrl } = await openLoginPage();
    const forged = await agent.request(loginUrl, { form: { email: account.email, password: account.password, _csrf: 'forged' } });
    expect(forged.status).toBe(400);
    expect(forged.location).toBeUndefined();
    const missing = await agent.request(loginUrl, { form: { email: account.email, password: account.password } });
    expect(missing.status).toBe(400);
  });

  it('answers a wrong password and an unknown email with the same page', async () => {
    const account = await createTestAccount(server.db);
    const { agent, page, loginUrl } = await openLoginPage();
    const csrf = hiddenField(page.body, '_csrf');
    const wrong = await agent.request(loginUrl, { form: { email: account.email, password: 'wrong-password', _csrf: csrf } });
    const unknown = await agent.request(loginUrl, { form: { email: account.email, password: 'wrong-password', _csrf: csrf } });
    const nobody = await agent.request(loginUrl, { form: { email: uniqueEmail('nobody'), password: 'wrong-password', _csrf: csrf } });
    expect(wrong.status).toBe(401);
    expect(nobody.status).toBe(401);
    const message = (body: string) => /<p class="error"[^>]*>([^<]*)</.exec(body)![1];
    expect(message(nobody.body)).toBe(message(wrong.body));
    expect(unknown.status).toBe(401);
  });

  it('re-renders registration with a message on invalid input and creates nothing', async () => {
    const { agent, uid } = await openLoginPage();
    const registerUrl = `${server.issuer}/interaction/${uid}/register`;
    const form = await agent.request(registerUrl);
    expect(form.body).toContain('name="name"');
    const csrf = hiddenField(form.body, '_csrf');
    const email = uniqueEmail('short');
    const tooShort = await agent.request(registerUrl, { form: { _csrf: csrf, email, password: 'short', name: 'Shorty' } });
    expect(tooShort.status).toBe(400);
    expect(tooShort.body).toContain('at least 8 characters');
    expect(tooShort.body).toContain(`value="${email}"`);
    const badEmail = await agent.request(registerUrl, {
      form: { _csrf: csrf, email: 'not-an-email', password: 'long enough password', name: 'X' },
    });
    expect(badEmail.status).toBe(400);
    const { rowCount } = await server.db.query('SELECT 1 FROM accounts WHERE lower(email) = lower($1)', [email]);
    expect(rowCount).toBe(0);
  });

  it('registration of an existing email does not create a second account', async () => {
    const account = await createTestAccount(server.db);
    const { agent, uid } = await openLoginPage();
    const registerUrl = `${server.issuer}/interaction/${uid}/register`;
    const csrf = hiddenField((await agent.request(registerUrl)).body, '_csrf');
    const again = await agent.request(registerUrl, {
      form: { _csrf: csrf, email: account.email, password: 'another password', name: 'Dup' },
    });
    expect(again.status).toBe(400);
    const { rows } = await server.db.query<{ count: string }>('SELECT count(*) FROM accounts WHERE lower(email) = lower($1)', [
      account.email,
    ]);
    expect(rows[0]!.count).toBe('1');
  });

  it('treats NUL bytes in the email as a failed sign-in, not a server error', async () => {
    const { agent, page, loginUrl } = await openLoginPage();
    const response = await agent.request(loginUrl, {
      form: { email: 'a\u0000b@example.test', password: 'whatever1', _csrf: hiddenField(page.body, '_csrf') },
    });
    expect(response.status).toBe(401);
  });

  it('escapes user-controlled text in pages', async () => {
    const { agent, page, loginUrl } = await openLoginPage();
    const csrf = hiddenField(page.body, '_csrf');
    const xss = await agent.request(loginUrl, { form: { email: '"><script>alert(1)</script>', password: 'x', _csrf: csrf } });
    expect(xss.body).not.toContain('<script>alert(1)</script>');
    expect(xss.body).toContain('&lt;script&gt;');
  });

  it('shows an error page, never a redirect, for an unregistered redirect_uri', async () => {
    const response = await new UserAgent().request(authorizationUrl({ redirect_uri: 'https://attacker.example/cb' }));
    expect(response.status).toBe(400);
    expect(response.location).toBeUndefined();
    expect(response.body).toContain('redirect_uri');
    expect(response.body).not.toMatch(/at \w+ \(.*:\d+:\d+\)/); // no stack trace
  });

  it('answers an unknown interaction with a friendly page instead of a server error', async () => {
    const response = await new UserAgent().request(`${server.issuer}/interaction/does-not-exist`);
    expect(response.status).toBe(400);
    expect(response.body).toContain('expired');
  });

  it('never answers malformed requests with a 5xx', async () => {
    const agent = request(server.server);
    const { loginUrl } = await openLoginPage();
    const loginPath = new URL(loginUrl).pathname;
    const responses = await Promise.all([
      agent.post('/token').set('content-type', 'application/json').send('{"broken'),
      agent.post('/token').type('form').send('grant_type=authorization_code&code=%ZZ'),
      agent.post('/token').type('form').send({ grant_type: 'nope' }),
      agent.get('/auth?client_id=%00&response_type=code'),
      agent.get('/me').set('authorization', `Bearer ${'x'.repeat(5000)}`),
      agent
        .post(loginPath)
        .type('form')
        .send('email=' + 'a'.repeat(20_000)),
      agent.post(loginPath).set('content-type', 'application/json').send('{"email":1}'),
      agent.post('/token/introspection').type('form').send('token[]=1'),
      agent.get('/interaction/%E0%A4%A'),
      agent.post('/session/end/confirm').type('form').send('xsrf=1'),
    ]);
    for (const [index, response] of responses.entries()) {
      expect(response.status, `malformed request #${index}`).toBeLessThan(500);
      expect(response.text).not.toMatch(/at \w+ \(.*:\d+:\d+\)/);
    }
  });

  it('serves health and readiness, and no metrics on the public listener', async () => {
    const agent = request(server.server);
    expect((await agent.get('/healthz')).body).toEqual({ status: 'ok' });
    expect((await agent.get('/readyz')).body).toMatchObject({ status: 'ready' });
    expect((await agent.get('/metrics')).status).toBe(404);
  });

  it('publishes discovery and a JWKS with RS256 and ES256 public keys only', async () => {
    const agent = request(server.server);
    const discovery = (await agent.get('/.well-known/openid-configuration')).body;
    expect(discovery.issuer).toBe(server.issuer);
    expect(discovery.response_types_supported).toEqual(['code']);
    expect(discovery.subject_types_supported).toEqual(expect.arrayContaining(['pairwise', 'public']));
    expect(discovery.code_challenge_methods_supported).toEqual(['S256']);
    const jwks = (await agent.get('/jwks')).body as { keys: Record<string, unknown>[] };
    expect(jwks.keys.map((key) => key['alg'])).toEqual(expect.arrayContaining(['RS256', 'ES256']));
    for (const key of jwks.keys) expect(key).not.toHaveProperty('d');
  });

  it('refuses the implicit flow', async () => {
    const response = await new UserAgent().follow(
      authorizationUrl({ response_type: 'id_token', nonce: 'n' }),
      registered.client.redirectUris[0]!,
    );
    expect('stoppedAt' in response).toBe(true);
    const returned = new URL((response as { stoppedAt: string }).stoppedAt);
    // Errors for fragment response types come back in the fragment.
    expect(new URLSearchParams(returned.hash.slice(1)).get('error')).toBe('unsupported_response_type');
  });

  it('behaves as one provider across two instances: same JWKS, code issued by one redeemed at the other', async () => {
    // Both instances claim the same issuer, as behind a load balancer.
    const other = await startTestServer({ env: { ISSUER: server.issuer } });
    try {
      const otherOrigin = `http://127.0.0.1:${(other.server.address() as { port: number }).port}`;
      const [a, b] = await Promise.all([
        fetch(`${server.issuer}/jwks`).then((r) => r.json()),
        fetch(`${otherOrigin}/jwks`).then((r) => r.json()),
      ]);
      expect(a).toEqual(b);

      const account = await createTestAccount(server.db);
      const config = await oidc.discovery(
        new URL(server.issuer),
        registered.client.clientId,
        registered.clientSecret,
        oidc.ClientSecretBasic(registered.clientSecret!),
        {
          execute: [oidc.allowInsecureRequests],
        },
      );
      const redirectUri = registered.client.redirectUris[0]!;
      const verifier = oidc.randomPKCECodeVerifier();
      const url = oidc.buildAuthorizationUrl(config, {
        redirect_uri: redirectUri,
        scope: 'openid email',
        state: 'x',
        code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256',
      });
      const { callback } = await completeAuthorization(new UserAgent(), url.href, redirectUri, {
        email: account.email,
        password: account.password,
        consent: 'allow',
      });
      // Every back-channel call now goes to the second instance.
      config[oidc.customFetch] = (target, options) => fetch(target.replace(server.issuer, otherOrigin), options as RequestInit);
      const tokens = await oidc.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: 'x' });
      expect(await oidc.fetchUserInfo(config, tokens.access_token, tokens.claims()!.sub)).toMatchObject({ email: account.email });
    } finally {
      await other.close();
    }
  });
});
