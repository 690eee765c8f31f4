import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as oidc from 'openid-client';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromiumMissing, launchChromium } from '../helpers/chromium.js';
import { createTestAccount, createTestClient } from '../helpers/fixtures.js';
import { discoverClient } from '../helpers/oidc-client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

/*
 * Standards issue, item 1: OIDC Core §3.1.2.1 and RP-Initiated Logout §2 say the
 * authorization and end-session endpoints MUST accept POST. A service on another site posts
 * its requests as auto-submitting forms, and the person's existing session (a SameSite=Lax
 * cookie, which a cross-site POST does not carry) is still used.
 */

let server: TestServer;
let rp: Server;
let browser: Browser;
let rpOrigin: string;
const posted: Record<string, Record<string, string>> = {};

/** A page of the service that posts `fields` to `action` as soon as it loads, as many RP libraries do. */
function autoPostPage(action: string, fields: Record<string, string>): string {
  const inputs = Object.entries(fields)
    .map(([name, value]) => `<input type="hidden" name="${name}" value="${value.replaceAll('"', '&quot;')}">`)
    .join('');
  return `<!doctype html><html><body><form method="post" action="${action}">${inputs}</form>
<script>document.forms[0].submit()</script></body></html>`;
}

beforeAll(async () => {
  server = await startTestServer();
  if (!chromiumMissing) browser = await launchChromium();
  // The service listens on localhost: another site than the issuer's 127.0.0.1.
  rp = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const page = posted[url.pathname];
    res.setHeader('content-type', 'text/html');
    res.end(
      page ? autoPostPage(page['action']!, Object.fromEntries(Object.entries(page).filter(([key]) => key !== 'action'))) : 'service page',
    );
  });
  await new Promise<void>((resolve) => rp.listen(0, 'localhost', resolve));
  rpOrigin = `http://localhost:${(rp.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await browser?.close();
  await new Promise<void>((resolve) => (rp ? rp.close(() => resolve()) : resolve()));
  await server?.close();
});

describe.skipIf(chromiumMissing)('requests a service posts from another site', () => {
  it('a POSTed authorization request completes, reusing the session; a POSTed logout request reaches the logout page', async () => {
    const account = await createTestAccount(server.db);
    const registered = await createTestClient(server.db, server.validator, {
      redirectUris: [`${rpOrigin}/callback`],
      postLogoutRedirectUris: [`${rpOrigin}/signed-out`],
    });
    const config = await discoverClient(server.issuer, registered.client.clientId, registered.clientSecret);
    const verifier = oidc.randomPKCECodeVerifier();
    const parameters = {
      client_id: registered.client.clientId,
      redirect_uri: `${rpOrigin}/callback`,
      response_type: 'code',
      scope: 'openid email',
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
    };
    const context = await browser.newContext();
    const page = await context.newPage();
    page.setDefaultTimeout(8000);

    // First sign-in, by a plain GET: the browser gets its session.
    await page.goto(`${server.issuer}/auth?${new URLSearchParams({ ...parameters, state: 'first' })}`);
    await page.fill('input[name="email"]', account.email);
    await page.fill('input[name="password"]', account.password);
    await Promise.all([page.waitForURL(/\/interaction\//), page.click('button[type="submit"]')]);
    await Promise.all([page.waitForURL(`${rpOrigin}/callback**`), page.click('button[form="consent-form"]')]);

    // Later, the service posts its request from its own page.
    posted['/sign-in'] = { action: `${server.issuer}/auth`, ...parameters, state: 'posted' };
    const seen: string[] = [];
    page.on('request', (request) => seen.push(`${request.method()} ${new URL(request.url()).pathname}`));
    await page.goto(`${rpOrigin}/sign-in`);
    await page.waitForURL(`${rpOrigin}/callback**`);
    const callback = new URL(page.url());
    expect(callback.searchParams.get('state')).toBe('posted');
    expect(seen).toContain('POST /auth');
    expect(seen).toContain('GET /auth');
    // No sign-in page on the way: the existing session was used.
    expect(seen.filter((entry) => entry.includes('/interaction/'))).toEqual([]);
    const tokens = await oidc.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: 'posted' });
    expect(tokens.claims()).toMatchObject({ email: account.email });

    // RP-initiated logout by POST: the person confirms on our page and returns to the service.
    posted['/sign-out'] = {
      action: `${server.issuer}/session/end`,
      id_token_hint: tokens.id_token!,
      post_logout_redirect_uri: `${rpOrigin}/signed-out`,
      state: 'bye',
    };
    await page.goto(`${rpOrigin}/sign-out`);
    await page.waitForSelector('button[name="logout"]');
    await Promise.all([page.waitForURL(`${rpOrigin}/signed-out**`), page.click('button[name="logout"]')]);
    expect(new URL(page.url()).searchParams.get('state')).toBe('bye');
    await context.close();
  });
});

describe('a POST to the authorization endpoint', () => {
  it('is answered 303 to the same endpoint with the same parameters; only forms are taken', async () => {
    const response = await fetch(`${server.issuer}/auth`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'client_id=abc&scope=openid+email&state=x%26y',
      redirect: 'manual',
    });
    expect(response.status).toBe(303);
    const location = new URL(response.headers.get('location')!, server.issuer);
    expect(location.pathname).toBe('/auth');
    expect(Object.fromEntries(location.searchParams)).toEqual({ client_id: 'abc', scope: 'openid email', state: 'x&y' });
    const json = await fetch(`${server.issuer}/auth`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(json.status).toBe(400);
  });
});
