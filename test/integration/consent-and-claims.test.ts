import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestAccount, createTestClient } from '../helpers/fixtures.js';
import { discoverClient, exchangeCode, startAuthorization } from '../helpers/oidc-client.js';
import { postForm, signInToAccountPages } from '../helpers/self-service.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { completeAuthorization, UserAgent } from '../helpers/user-agent.js';
import { waitFor } from '../helpers/listener.js';

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
async function signIn(browser: UserAgent, target: Service, person: Person, scope: string, extra = '', share?: string[]) {
  const request = await startAuthorization(target.config, target.redirectUri, scope);
  const asked: string[] = [];
  /** The optional items offered as checkboxes, and whether each came ticked. */
  const offered: { scope: string; ticked: boolean }[] = [];
  const original = browser.request.bind(browser);
  // Record what each consent page lists (its scope descriptions), as the person reads it.
  browser.request = async (...args) => {
    const page = await original(...args);
    if (/action="[^"]*\/consent"/.test(page.body)) {
      asked.push(...[...page.body.matchAll(/data-scope="([^"]+)"/g)].map((m) => m[1]!));
      for (const box of page.body.matchAll(/<input type="checkbox"[^>]*name="scope" value="([^"]+)"([^>]*)>/g)) {
        offered.push({ scope: box[1]!, ticked: / checked/.test(box[2]!) });
      }
    }
    return page;
  };
  try {
    const { callback, pages } = await completeAuthorization(browser, `${request.url.href}${extra}`, target.redirectUri, {
      ...person,
      consent: 'allow',
      ...(share ? { share } : {}),
    });
    return { pages, asked, offered, tokens: await exchangeCode(target.config, callback, request) };
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

describe('choosing what to share', () => {
  /** A service that needs openid and profile, and may ask for the email address. */
  const emailOptional = () => service({ scopes: ['openid', 'profile', 'offline_access'], optionalScopes: ['email'] });
  const everything = 'openid profile email offline_access';

  async function servicesPage(browser: UserAgent, person: Person) {
    await signInToAccountPages(browser, server.issuer, person.email, person.password);
    return browser.request(`${server.issuer}/account/services`);
  }

  it('an unticked optional item is not shared: not in the ID token, userinfo or the granted scope; a later request asks only for it', async () => {
    const person = await createTestAccount(server.db);
    const target = await emailOptional();
    const browser = new UserAgent();
    const first = await signIn(browser, target, person, everything, '&prompt=consent');
    expect(first.offered).toEqual([{ scope: 'email', ticked: false }]);
    expect(first.asked).toEqual(['openid', 'profile', 'offline_access']); // required, listed plainly
    expect(first.tokens.scope?.split(' ').sort()).toEqual(['offline_access', 'openid', 'profile']);
    const claims = first.tokens.claims()!;
    expect(claims).not.toHaveProperty('email');
    expect(claims).toMatchObject({ name: person.name });
    const userinfo = await oidc.fetchUserInfo(target.config, first.tokens.access_token, claims.sub);
    expect(userinfo).not.toHaveProperty('email');
    expect(userinfo).toMatchObject({ name: person.name });

    // The service asks again: only the declined item is asked, and this time it is ticked.
    const again = await signIn(browser, target, person, everything, '', ['email']);
    expect(again.pages).toEqual(['consent']);
    expect(again.asked).toEqual([]);
    expect(again.offered).toEqual([{ scope: 'email', ticked: false }]);
    expect(again.tokens.claims()).toMatchObject({ email: person.email, name: person.name });
    expect(again.tokens.scope?.split(' ')).toContain('email');

    // Asked again in full later (prompt=consent), what the person shared comes ticked.
    const review = await signIn(browser, target, person, everything, '&prompt=consent', ['email']);
    expect(review.offered).toEqual([{ scope: 'email', ticked: true }]);
  });

  it('a service without the optional item does not ask again for what it did not request', async () => {
    const person = await createTestAccount(server.db);
    const target = await emailOptional();
    const browser = new UserAgent();
    await signIn(browser, target, person, everything, '&prompt=consent');
    const quiet = await signIn(browser, target, person, 'openid profile offline_access');
    expect(quiet.pages).toEqual([]);
    expect(quiet.tokens.claims()).not.toHaveProperty('email');
  });

  it('withdrawn on /account, an optional item is gone from the next token; a required one cannot be withdrawn', async () => {
    const person = await createTestAccount(server.db);
    const target = await emailOptional();
    const browser = new UserAgent();
    const shared = await signIn(browser, target, person, everything, '&prompt=consent', ['email']);
    expect(shared.tokens.claims()).toMatchObject({ email: person.email });

    const page = await servicesPage(browser, person);
    expect(page.body).toContain('Optional: the service works without it');
    expect(page.body.match(/action="\/account\/services\/withdraw"/g)).toHaveLength(1); // only the optional item
    const clientId = target.registered.client.clientId;
    const required = await postForm(browser, server.issuer, page, '/account/services/withdraw', { clientId, scope: 'profile' });
    expect(required.status).toBe(303);
    const withdrawn = await postForm(browser, server.issuer, page, '/account/services/withdraw', { clientId, scope: 'email' });
    expect(withdrawn.location).toBe(`${server.issuer}/account/services?done=item-withdrawn`);
    const after = await browser.request(withdrawn.location!);
    expect(after.body).toContain('That item is no longer shared');
    expect(after.body).not.toMatch(/<li data-scope="email">/);
    expect(after.body).toMatch(/<li data-scope="profile">/);

    const refreshed = await oidc.refreshTokenGrant(target.config, shared.tokens.refresh_token!);
    expect(refreshed.scope?.split(' ')).not.toContain('email');
    const claims = refreshed.claims()!;
    expect(claims).not.toHaveProperty('email');
    expect(claims).toMatchObject({ name: person.name });
    const userinfo = await oidc.fetchUserInfo(target.config, refreshed.access_token, claims.sub);
    expect(userinfo).not.toHaveProperty('email');
    expect(userinfo).toMatchObject({ name: person.name });
    // The access token issued before the withdrawal no longer carries it either: its resource
    // servers are told so at introspection, and userinfo leaves it out.
    const before = await oidc.tokenIntrospection(target.config, shared.tokens.access_token);
    expect(before.active).toBe(true);
    expect(before.scope?.split(' ')).not.toContain('email');
    expect(before.scope?.split(' ')).toContain('profile');
    const earlierUserinfo = await oidc.fetchUserInfo(target.config, shared.tokens.access_token, claims.sub);
    expect(earlierUserinfo).not.toHaveProperty('email');
    expect(earlierUserinfo).toMatchObject({ name: person.name });
    // Still connected: the service signs the person in without a new consent for what remains.
    expect((await signIn(browser, target, person, 'openid profile offline_access')).pages).toEqual([]);
  });

  it('the services page and the export list which claims each service received, by which route', async () => {
    const person = await createTestAccount(server.db);
    const target = await service({ scopes: ['openid', 'email'], grantTypes: ['authorization_code'] });
    const browser = new UserAgent();
    const { tokens } = await signIn(browser, target, person, 'openid email');
    await oidc.fetchUserInfo(target.config, tokens.access_token, tokens.claims()!.sub);
    await oidc.tokenIntrospection(target.config, tokens.access_token);

    const expected = [
      { claim: 'email', route: 'id_token' },
      { claim: 'email', route: 'userinfo' },
      { claim: 'email_verified', route: 'userinfo' },
      { claim: 'sub', route: 'id_token' },
      { claim: 'sub', route: 'introspection' },
      { claim: 'sub', route: 'userinfo' },
    ];
    // Written after each response: wait until the three routes are in.
    // The page shows one line per route, listing the claims that went by it.
    const shownReleases = (html: string) =>
      [...html.matchAll(/<li data-route="([^"]+)">([\s\S]*?)<\/li>/g)]
        .flatMap((line) => [...line[2]!.matchAll(/data-claim="([^"]+)"/g)].map((claim) => ({ claim: claim[1]!, route: line[1]! })))
        .sort((a, b) => a.claim.localeCompare(b.claim) || a.route.localeCompare(b.route));
    const page = await waitFor(async () => {
      const shown = await servicesPage(browser, person);
      return shownReleases(shown.body).length >= 7 ? shown : undefined;
    });
    expect(shownReleases(page.body)).toEqual([
      ...expected.slice(0, 2),
      { claim: 'email_verified', route: 'id_token' },
      ...expected.slice(2),
    ]);
    expect(page.body).not.toContain('data-claim="name"'); // not granted, never sent
    const data = await browser.request(`${server.issuer}/account/data`);
    const exported = JSON.parse((await postForm(browser, server.issuer, data, '/account/data/export')).body) as {
      claimsReleased: { clientId: string; claim: string; route: string; firstAt: string; lastAt: string }[];
    };
    const released = exported.claimsReleased.filter((release) => release.clientId === target.registered.client.clientId);
    expect(released.map(({ claim, route }) => ({ claim, route }))).toEqual(expect.arrayContaining(expected));
    expect(JSON.stringify(released)).not.toContain(person.email); // names, never values
  });
});
