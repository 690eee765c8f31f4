import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestAccount, createTestClient } from '../helpers/fixtures.js';
import { discoverClient, exchangeCode, startAuthorization } from '../helpers/oidc-client.js';
import { postForm, signInToAccountPages } from '../helpers/self-service.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { completeAuthorization, UserAgent } from '../helpers/user-agent.js';

/*
 * Standards issue, items 2 and 3: consent belongs to the person and the service, whatever
 * browser or session; and the ID token carries the claims of the granted scopes, as client
 * libraries expect, unless a service asked for minimal ID tokens.
 */

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server?.close();
});

let port = 9520;
async function service(overrides: Parameters<typeof createTestClient>[2] = {}) {
  const registered = await createTestClient(server.db, server.validator, {
    redirectUris: [`http://127.0.0.1:${(port += 1)}/cb`],
    ...overrides,
  });
  const config = await discoverClient(server.issuer, registered.client.clientId, registered.clientSecret);
  return { registered, config, redirectUri: registered.client.redirectUris[0]! };
}

type Service = Awaited<ReturnType<typeof service>>;
type Person = Awaited<ReturnType<typeof createTestAccount>>;

/** Signs in to the service in this browser and returns which pages were shown, what the consent page asked and the tokens. */
async function signIn(browser: UserAgent, target: Service, person: Person, scope: string, extra = '') {
  const request = await startAuthorization(target.config, target.redirectUri, scope);
  const asked: string[] = [];
  const original = browser.request.bind(browser);
  // Record what each consent page lists (its scope descriptions), as the person reads it.
  browser.request = async (...args) => {
    const page = await original(...args);
    if (/action="[^"]*\/consent"/.test(page.body)) asked.push(...[...page.body.matchAll(/data-scope="([^"]+)"/g)].map((m) => m[1]!));
    return page;
  };
  try {
    const { callback, pages } = await completeAuthorization(browser, `${request.url.href}${extra}`, target.redirectUri, {
      ...person,
      consent: 'allow',
    });
    return { pages, asked, tokens: await exchangeCode(target.config, callback, request) };
  } finally {
    browser.request = original;
  }
}

describe('consent', () => {
  it('given once is found again from another browser, for the same or fewer scopes; more asks only for what is new', async () => {
    const person = await createTestAccount(server.db);
    const target = await service();
    const first = await signIn(new UserAgent(), target, person, 'openid profile');
    expect(first.pages).toEqual(['login', 'consent']);
    expect(first.asked).toEqual(['openid', 'profile']);

    // Another browser, a new session: no question.
    expect((await signIn(new UserAgent(), target, person, 'openid profile')).pages).toEqual(['login']);
    expect((await signIn(new UserAgent(), target, person, 'openid')).pages).toEqual(['login']);

    // A larger set asks only for the new scope.
    const more = await signIn(new UserAgent(), target, person, 'openid profile email');
    expect(more.pages).toEqual(['login', 'consent']);
    expect(more.asked).toEqual(['email']);
    expect((await signIn(new UserAgent(), target, person, 'openid profile email')).pages).toEqual(['login']);
  });

  it('is asked again with prompt=consent, listing everything, and after the service was disconnected', async () => {
    const person = await createTestAccount(server.db);
    const target = await service();
    const browser = new UserAgent();
    await signIn(browser, target, person, 'openid email');
    const again = await signIn(browser, target, person, 'openid email', '&prompt=consent');
    expect(again.pages).toEqual(['consent']);
    expect(again.asked).toEqual(['openid', 'email']);

    const account = new UserAgent();
    const page = await signInToAccountPages(account, server.issuer, person.email, person.password);
    const services = await account.request(`${server.issuer}/account/services`);
    await postForm(account, server.issuer, services, '/account/services/revoke', { clientId: target.registered.client.clientId });
    expect(page.status).toBe(200);
    expect((await signIn(new UserAgent(), target, person, 'openid email')).pages).toEqual(['login', 'consent']);
  });
});

describe('claims in the ID token', () => {
  it('are those of the granted scopes by default, as openid-client reads them, and nothing more', async () => {
    const person = await createTestAccount(server.db);
    const { tokens } = await signIn(new UserAgent(), await service(), person, 'openid email');
    const claims = tokens.claims()!;
    expect(claims).toMatchObject({ email: person.email, email_verified: true });
    expect(claims).not.toHaveProperty('name');
    expect(claims).not.toHaveProperty('given_name');

    const withProfile = await signIn(new UserAgent(), await service(), person, 'openid profile email');
    expect(withProfile.tokens.claims()).toMatchObject({
      email: person.email,
      name: person.name,
      given_name: person.givenName,
      family_name: person.familyName,
    });
  });

  it('are sub and protocol claims only for a service registered with --id-token-claims minimal; userinfo still has the rest', async () => {
    const person = await createTestAccount(server.db);
    const target = await service({ idTokenClaims: 'minimal' });
    const { tokens } = await signIn(new UserAgent(), target, person, 'openid profile email');
    const claims = tokens.claims()!;
    expect(claims).not.toHaveProperty('email');
    expect(claims).not.toHaveProperty('name');
    expect(claims).toHaveProperty('sub');
    const userinfo = await oidc.fetchUserInfo(target.config, tokens.access_token, claims.sub);
    expect(userinfo).toMatchObject({ email: person.email, name: person.name });
  });

  it('are signed with ES256 for a service registered with --id-token-signed-response-alg ES256', async () => {
    const person = await createTestAccount(server.db);
    const target = await service({ idTokenSignedResponseAlg: 'ES256' });
    const { tokens } = await signIn(new UserAgent(), target, person, 'openid');
    const header = JSON.parse(Buffer.from(tokens.id_token!.split('.')[0]!, 'base64url').toString()) as { alg: string };
    expect(header.alg).toBe('ES256');
  });
});
