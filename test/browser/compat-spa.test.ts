import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromiumMissing, launchChromium } from '../helpers/chromium.js';
import { createTestAccount, createTestClient } from '../helpers/fixtures.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const oidcClientBundle = readFileSync(new URL('../../node_modules/oidc-client-ts/dist/browser/oidc-client-ts.min.js', import.meta.url));

/** The single-page app: oidc-client-ts's documented UserManager usage, nothing special for us. */
const appScript = `
const settings = JSON.parse(document.getElementById('settings').textContent);
const manager = new oidc.UserManager({ ...settings, response_type: 'code', scope: 'openid profile email', loadUserInfo: true });
const out = document.getElementById('out');
if (location.pathname === '/callback') {
  manager.signinRedirectCallback()
    .then((user) => { out.textContent = JSON.stringify({ profile: user.profile, hasRefreshToken: Boolean(user.refresh_token) }); })
    .catch((error) => { out.textContent = 'error: ' + error.message; });
} else {
  document.getElementById('login').addEventListener('click', () => manager.signinRedirect());
}`;

let server: TestServer;
let spa: Server;
let browser: Browser;

beforeAll(async () => {
  server = await startTestServer();
  if (!chromiumMissing) browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
  await new Promise<void>((resolve) => (spa ? spa.close(() => resolve()) : resolve()));
  await server?.close();
});

async function startSpa(settings: Record<string, string>, port: number): Promise<void> {
  const page = `<!doctype html><html><body><button id="login">Sign in</button><pre id="out"></pre>
<script id="settings" type="application/json">${JSON.stringify(settings)}</script>
<script src="/oidc-client-ts.js"></script><script src="/app.js"></script></body></html>`;
  spa = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://spa').pathname;
    if (path === '/oidc-client-ts.js') res.setHeader('content-type', 'text/javascript').end(oidcClientBundle);
    else if (path === '/app.js') res.setHeader('content-type', 'text/javascript').end(appScript);
    else res.setHeader('content-type', 'text/html').end(page);
  });
  await new Promise<void>((resolve) => spa.listen(port, '127.0.0.1', resolve));
  expect((spa.address() as AddressInfo).port).toBe(port);
}

describe.skipIf(chromiumMissing)('compatibility: oidc-client-ts as a public single-page client in Chromium', () => {
  it('signs in with code + PKCE, calls the token and userinfo endpoints cross-origin (CORS) and gets the profile', async () => {
    const port = 9750;
    const origin = `http://127.0.0.1:${port}`;
    const account = await createTestAccount(server.db);
    const { client } = await createTestClient(server.db, server.validator, {
      public: true,
      redirectUris: [`${origin}/callback`],
      postLogoutRedirectUris: [`${origin}/`],
    });
    await startSpa({ authority: server.issuer, client_id: client.clientId, redirect_uri: `${origin}/callback` }, port);

    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${origin}/`);
    await page.click('#login');
    await page.waitForURL(/\/interaction\//, { timeout: 10_000 }).catch(async (error: Error) => {
      throw new Error(`${error.message}; at ${page.url()}: ${(await page.content()).slice(0, 800)}`);
    });
    await page.fill('input[name="email"]', account.email);
    await page.fill('input[name="password"]', account.password);
    await page.click('form[action$="/login"] button[type="submit"]');
    await page.waitForSelector('form[action$="/consent"]', { timeout: 10_000 }).catch(async (error: Error) => {
      throw new Error(`${error.message}; at ${page.url()}: ${(await page.content()).slice(0, 1500)}`);
    });
    await page.click('button[form="consent-form"]');
    await page.waitForURL(`${origin}/callback*`, { timeout: 10_000 });
    await page.waitForFunction("document.getElementById('out')?.textContent !== ''");
    const out = (await page.textContent('#out'))!;
    expect(out).not.toMatch(/^error/);
    const result = JSON.parse(out) as { profile: Record<string, unknown>; hasRefreshToken: boolean };
    expect(result.profile).toMatchObject({ email: account.email, name: account.name, iss: server.issuer, aud: client.clientId });
    expect(result.hasRefreshToken).toBe(true);
    await context.close();
  });

  it('refuses cross-origin token requests from origins the public client did not register', async () => {
    const { client } = await createTestClient(server.db, server.validator, {
      public: true,
      redirectUris: ['http://127.0.0.1:9751/callback'],
    });
    const token = await fetch(`${server.issuer}/token`, {
      method: 'POST',
      headers: { origin: 'https://evil.example', 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        code: 'x',
        client_id: client.clientId,
        redirect_uri: client.redirectUris[0]!,
        code_verifier: 'v'.repeat(43),
      }),
    });
    expect(token.status).toBe(400);
    expect(token.headers.get('access-control-allow-origin')).toBeNull();
  });
});
