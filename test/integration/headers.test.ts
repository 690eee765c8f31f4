import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestAccount, createTestClient } from '../helpers/fixtures.js';
import { RecordingAgent } from '../helpers/recording-agent.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { completeAuthorization, formActions, hiddenField, type PageResponse } from '../helpers/user-agent.js';

/*
 * Security headers and cookie flags on every page a person can see, under an http issuer
 * (tests, development) and an https issuer behind a TLS-terminating proxy (production).
 */

const PAGES = [
  'login',
  'register',
  'consent',
  'logout confirmation',
  'logged out',
  'error',
  'not found',
  'healthz',
  'readyz',
  'discovery',
  'jwks',
  'token error',
  'route variant',
] as const;
type PageName = (typeof PAGES)[number];
/** Pages that show personal data or carry one-time form tokens: never cached. */
const PERSONAL: PageName[] = ['login', 'register', 'consent', 'logout confirmation', 'logged out', 'error'];
const HTML: PageName[] = ['login', 'register', 'consent', 'logout confirmation', 'logged out', 'error', 'not found'];
/** The services' JSON endpoints: no page, so a policy that allows nothing at all. */
const PROTOCOL: PageName[] = ['discovery', 'jwks', 'token error', 'route variant'];

const REDIRECT_URI = 'http://127.0.0.1:9800/cb';

interface Walk {
  pages: Record<PageName, PageResponse>;
  /** Every response the browser received on the way, redirects included. */
  responses: PageResponse[];
}

/** Visits every page once, as a person would, through `issuer` (the public URL). */
async function visitEveryPage(server: TestServer, issuer: string, agent: RecordingAgent): Promise<Walk> {
  const account = await createTestAccount(server.db);
  const { client } = await createTestClient(server.db, server.validator, { redirectUris: [REDIRECT_URI] });
  const authorize = new URLSearchParams({
    client_id: client.clientId,
    redirect_uri: REDIRECT_URI,
    response_type: 'code',
    scope: 'openid email',
    state: 'st',
    code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
    code_challenge_method: 'S256',
  });
  const page = (response: PageResponse | { stoppedAt: string }, what: string): PageResponse => {
    if ('stoppedAt' in response) throw new Error(`expected the ${what} page, was sent to ${response.stoppedAt}`);
    return response;
  };

  const login = page(await agent.follow(`${issuer}/auth?${authorize}`, REDIRECT_URI), 'login');
  const loginAction = formActions(login.body).find((a) => a.endsWith('/login'));
  if (!loginAction) throw new Error(`no login form on the page (status ${login.status}): ${login.body.slice(0, 300)}`);
  const register = await agent.request(issuer + loginAction.replace(/\/login$/, '/register'));
  const consent = page(
    await agent.follow(issuer + loginAction, REDIRECT_URI, {
      form: { _csrf: hiddenField(login.body, '_csrf'), email: account.email, password: account.password },
    }),
    'consent',
  );
  const consentAction = formActions(consent.body).find((a) => a.endsWith('/consent'));
  if (!consentAction) throw new Error(`no consent form on the page (status ${consent.status})`);
  const back = await agent.follow(issuer + consentAction, REDIRECT_URI, { form: { _csrf: hiddenField(consent.body, '_csrf') } });
  if (!('stoppedAt' in back)) throw new Error('consent did not return to the service');

  const logoutConfirmation = await agent.request(`${issuer}/session/end?client_id=${encodeURIComponent(client.clientId)}`);
  const loggedOut = page(
    await agent.follow(`${issuer}/session/end/confirm`, REDIRECT_URI, {
      form: { xsrf: hiddenField(logoutConfirmation.body, 'xsrf'), logout: 'yes' },
    }),
    'logged out',
  );
  const error = await agent.request(`${issuer}/auth?client_id=no-such-client&response_type=code&scope=openid`);
  const notFound = await agent.request(`${issuer}/no-such-page`);
  const healthz = await agent.request(`${issuer}/healthz`);
  const readyz = await agent.request(`${issuer}/readyz`);
  const discovery = await agent.request(`${issuer}/.well-known/openid-configuration`);
  const jwks = await agent.request(`${issuer}/jwks`);
  const tokenError = await agent.request(`${issuer}/token`, { form: { grant_type: 'client_credentials' } });
  // Refused before either lane (a provider path spelt differently): still the strict set.
  const routeVariant = await agent.request(`${issuer}/Token`, { form: { grant_type: 'client_credentials' } });

  const pages: Record<PageName, PageResponse> = {
    login,
    register,
    consent,
    'logout confirmation': logoutConfirmation,
    'logged out': loggedOut,
    error,
    'not found': notFound,
    healthz,
    readyz,
    discovery,
    jwks,
    'token error': tokenError,
    'route variant': routeVariant,
  };
  // Each page is the page it claims to be.
  expect(login.status).toBe(200);
  expect(register.status).toBe(200);
  expect(formActions(register.body).some((a) => a.endsWith('/register'))).toBe(true);
  expect(consent.status).toBe(200);
  expect(logoutConfirmation.status).toBe(200);
  expect(logoutConfirmation.body).toContain('name="xsrf"');
  expect(loggedOut.status).toBe(200);
  expect(error.status).toBe(400);
  expect(notFound.status).toBe(404);
  expect(healthz.status).toBe(200);
  expect(readyz.status).toBe(200);
  expect(discovery.status).toBe(200);
  expect(jwks.status).toBe(200);
  expect(tokenError.status).toBe(400);
  expect(routeVariant.status).toBe(404);
  for (const name of HTML) expect(pages[name].headers.get('content-type'), name).toContain('text/html');
  return { pages, responses: [...agent.responses] };
}

function cookieAttributes(setCookie: string): { name: string; value: string; attributes: string[] } {
  const [pair, ...attributes] = setCookie.split(';').map((part) => part.trim());
  const eq = pair!.indexOf('=');
  return { name: pair!.slice(0, eq), value: pair!.slice(eq + 1), attributes: attributes.map((a) => a.toLowerCase()) };
}

function allSetCookies(responses: PageResponse[]): { url: string; setCookie: string }[] {
  return responses.flatMap((response) => response.headers.getSetCookie().map((setCookie) => ({ url: response.url, setCookie })));
}

function expectBaselineHeaders(name: string, response: PageResponse): void {
  const csp = response.headers.get('content-security-policy');
  expect(csp, `${name}: Content-Security-Policy`).toBeTruthy();
  expect(csp, `${name}: CSP frame-ancestors`).toMatch(/frame-ancestors 'none'/);
  expect(csp, `${name}: CSP unsafe-inline`).not.toContain('unsafe-inline');
  expect(csp, `${name}: CSP unsafe-eval`).not.toContain('unsafe-eval');
  expect(response.headers.get('x-frame-options'), `${name}: X-Frame-Options`).toBe('DENY');
  expect(response.headers.get('x-content-type-options'), `${name}: X-Content-Type-Options`).toBe('nosniff');
  expect(response.headers.get('referrer-policy'), `${name}: Referrer-Policy`).toBe('no-referrer');
}

describe('security headers and cookie flags under an http issuer', () => {
  let server: TestServer;
  let walk: Walk;

  beforeAll(async () => {
    server = await startTestServer();
    walk = await visitEveryPage(server, server.issuer, new RecordingAgent());
  });
  afterAll(async () => {
    await server?.close();
  });

  it.each(PAGES)(
    'the %s page carries a CSP (frame-ancestors none, no unsafe-inline), X-Frame-Options DENY, nosniff and no-referrer',
    (name) => {
      expectBaselineHeaders(name, walk.pages[name]);
    },
  );

  it.each(HTML)('the %s page has a script-src without inline script', (name) => {
    const csp = walk.pages[name].headers.get('content-security-policy')!;
    expect(csp).toMatch(/script-src 'self'/);
    expect(csp).toMatch(/default-src 'self'/);
  });

  it.each(HTML)('the %s page is isolated from other origins (helmet: COOP, CORP, Origin-Agent-Cluster …)', (name) => {
    const headers = walk.pages[name].headers;
    expect(headers.get('cross-origin-opener-policy')).toBe('same-origin');
    expect(headers.get('cross-origin-resource-policy')).toBe('same-origin');
    expect(headers.get('origin-agent-cluster')).toBe('?1');
    expect(headers.get('x-dns-prefetch-control')).toBe('off');
    expect(headers.get('x-permitted-cross-domain-policies')).toBe('none');
    expect(headers.get('x-xss-protection')).toBe('0');
  });

  it.each(PROTOCOL)("the %s answer's policy allows no resource at all (default-src 'none')", (name) => {
    expect(walk.pages[name].headers.get('content-security-policy')).toBe("default-src 'none'; frame-ancestors 'none'");
  });

  it.each(PERSONAL)('the %s page is not cached (Cache-Control: no-store)', (name) => {
    expect(walk.pages[name].headers.get('cache-control')).toMatch(/\bno-store\b/);
  });

  it('health and readiness answers are not cached', () => {
    expect(walk.pages.healthz.headers.get('cache-control')).toMatch(/\bno-store\b/);
    expect(walk.pages.readyz.headers.get('cache-control')).toMatch(/\bno-store\b/);
  });

  it('sets every cookie of the whole flow httpOnly and SameSite (Lax or Strict), and sends no HSTS over http', () => {
    const cookies = allSetCookies(walk.responses);
    expect(cookies.map(({ setCookie }) => cookieAttributes(setCookie).name)).toEqual(
      expect.arrayContaining(['_interaction', '_session', 'idp.csrf']),
    );
    for (const { url, setCookie } of cookies) {
      const { attributes } = cookieAttributes(setCookie);
      expect(attributes, `${setCookie} (from ${url})`).toContain('httponly');
      expect(
        attributes.some((a) => a === 'samesite=lax' || a === 'samesite=strict'),
        `${setCookie} (from ${url})`,
      ).toBe(true);
    }
    for (const response of walk.responses) expect(response.headers.get('strict-transport-security'), response.url).toBeNull();
  });

  it('gives the browser a new session id at sign-in: the _session cookie after signing in differs from every value it had before', async () => {
    const agent = new RecordingAgent();
    const account = await createTestAccount(server.db);
    const { client } = await createTestClient(server.db, server.validator, { redirectUris: [REDIRECT_URI] });
    const authorizationUrl = (extra: Record<string, string>) =>
      `${server.issuer}/auth?${new URLSearchParams({
        client_id: client.clientId,
        redirect_uri: REDIRECT_URI,
        response_type: 'code',
        scope: 'openid',
        code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
        code_challenge_method: 'S256',
        ...extra,
      })}`;
    const sessionCookie = async () =>
      (await agent.jar.getCookies(`${server.issuer}/`)).find((cookie) => cookie.key === '_session')?.value ?? undefined;
    /** `_session` values the browser held or was sent up to and including the sign-in post. */
    const sessionValuesBeforeSignIn = (from: number) => {
      const responses = agent.responses.slice(from);
      const signIn = responses.findIndex((r) => r.url.endsWith('/login') && r.status >= 300 && r.status < 400);
      expect(signIn, 'the sign-in post').toBeGreaterThanOrEqual(0);
      return allSetCookies(responses.slice(0, signIn + 1))
        .map(({ setCookie }) => cookieAttributes(setCookie))
        .filter((cookie) => cookie.name === '_session' && cookie.value)
        .map((cookie) => cookie.value);
    };

    const first = await completeAuthorization(agent, authorizationUrl({ state: 'one' }), REDIRECT_URI, {
      email: account.email,
      password: account.password,
      consent: 'allow',
    });
    expect(first.pages).toContain('login');
    const afterFirst = await sessionCookie();
    expect(afterFirst).toBeTruthy();
    expect(sessionValuesBeforeSignIn(0)).not.toContain(afterFirst);

    // Signed in already; prompt=login makes the person sign in again in the same browser.
    const heldBefore = await sessionCookie();
    const mark = agent.responses.length;
    const second = await completeAuthorization(agent, authorizationUrl({ state: 'two', prompt: 'login' }), REDIRECT_URI, {
      email: account.email,
      password: account.password,
      consent: 'allow',
    });
    expect(second.pages).toContain('login');
    const afterSecond = await sessionCookie();
    expect(afterSecond).toBeTruthy();
    expect(afterSecond).not.toBe(heldBefore);
    expect(afterSecond).not.toBe(afterFirst);
    expect([heldBefore, ...sessionValuesBeforeSignIn(mark)]).not.toContain(afterSecond);
  });
});

describe('security headers and cookie flags under an https issuer behind a TLS-terminating proxy', () => {
  const publicIssuer = 'https://id.example.test';
  let server: TestServer;
  let walk: Walk;

  beforeAll(async () => {
    server = await startTestServer({
      env: {
        ISSUER: publicIssuer,
        TRUST_PROXY: 'true',
        COOKIE_KEYS: randomBytes(32).toString('base64url'),
        // A key-encryption key of its own would re-encrypt the signing keys every test server shares.
        ALLOW_DATABASE_HELD_KEYS: 'true',
      },
    });
    const port = (server.server.address() as { port: number }).port;
    walk = await visitEveryPage(server, publicIssuer, new RecordingAgent({ port }));
  });
  afterAll(async () => {
    await server?.close();
  });

  it('publishes the https issuer in discovery', () => {
    expect(JSON.parse(walk.pages.discovery.body)).toMatchObject({ issuer: publicIssuer });
  });

  it.each(PAGES)('the %s page carries the baseline headers and HSTS', (name) => {
    const response = walk.pages[name];
    expectBaselineHeaders(name, response);
    const hsts = response.headers.get('strict-transport-security');
    expect(hsts, name).toMatch(/max-age=\d{7,}/);
  });

  it('sends HSTS on every response of the flow, redirects included', () => {
    for (const response of walk.responses) {
      expect(response.headers.get('strict-transport-security'), `${response.status} ${response.url}`).toMatch(/max-age=\d+/);
    }
  });

  it('sets every cookie of the whole flow Secure, httpOnly and SameSite', () => {
    const cookies = allSetCookies(walk.responses);
    expect(cookies.map(({ setCookie }) => cookieAttributes(setCookie).name)).toEqual(
      expect.arrayContaining(['_interaction', '_session', 'idp.csrf']),
    );
    for (const { url, setCookie } of cookies) {
      const { attributes } = cookieAttributes(setCookie);
      expect(attributes, `${setCookie} (from ${url})`).toContain('secure');
      expect(attributes, `${setCookie} (from ${url})`).toContain('httponly');
      expect(
        attributes.some((a) => a === 'samesite=lax' || a === 'samesite=strict'),
        `${setCookie} (from ${url})`,
      ).toBe(true);
    }
  });
});
