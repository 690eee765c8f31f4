import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import axe from 'axe-core';
import * as oidc from 'openid-client';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { translator, type Language } from '../../src/i18n/catalogue.js';
import { chromiumMissing, launchChromium, overflowsHorizontally, screenshot } from '../helpers/chromium.js';
import { createTestAccount, createTestClient, uniqueEmail } from '../helpers/fixtures.js';
import { LogoutListener, waitFor } from '../helpers/listener.js';
import { discoverClient, startAuthorization } from '../helpers/oidc-client.js';
import { artefactCounts, latestMail, linkIn } from '../helpers/self-service.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

let server: TestServer;
let browser: Browser;
let service: Server;
let serviceOrigin: string;
let backchannel: LogoutListener;

beforeAll(async () => {
  if (chromiumMissing) return;
  server = await startTestServer();
  browser = await launchChromium();
  backchannel = await new LogoutListener().start();
  // The test service: its callback page just says it was reached; the test redeems the code.
  service = createServer((_req, res) =>
    res.setHeader('content-type', 'text/html').end('<!doctype html><title>Test service</title><h1>Back at the service</h1>'),
  );
  await new Promise<void>((resolve) => service.listen(0, '127.0.0.1', resolve));
  serviceOrigin = `http://127.0.0.1:${(service.address() as AddressInfo).port}`;
}, 60_000);
afterAll(async () => {
  await browser?.close();
  await new Promise<void>((resolve) => (service ? service.close(() => resolve()) : resolve()));
  await backchannel?.stop();
  await server?.close();
});

const viewports = { desktop: { width: 1280, height: 800 }, phone: { width: 390, height: 844 } };

/** A browser profile that records every Content-Security-Policy refusal. */
async function newContext(viewport: { width: number; height: number }, options: { bypassCSP?: boolean } = {}) {
  const context = await browser.newContext({ viewport, locale: 'en-US', ...options });
  const cspViolations: string[] = [];
  context.on('console', (message) => {
    if (/Content Security Policy/i.test(message.text())) cspViolations.push(message.text());
  });
  return { context, cspViolations };
}

async function registerService(name: string) {
  const registered = await createTestClient(server.db, server.validator, {
    name,
    redirectUris: [`${serviceOrigin}/cb`],
    postLogoutRedirectUris: [`${serviceOrigin}/bye`],
    backchannelLogoutUri: backchannel.url,
  });
  const config = await discoverClient(server.issuer, registered.client.clientId, registered.clientSecret);
  const request = await startAuthorization(config, `${serviceOrigin}/cb`, 'openid profile email');
  return { registered, config, request };
}

/** Runs axe-core on the page; returns the serious and critical violations. */
async function seriousViolations(page: Page): Promise<string[]> {
  await page.addScriptTag({ content: axe.source });
  const result = await page.evaluate<{ violations: { id: string; impact: string | null; nodes: { target: unknown }[] }[] }>(
    'axe.run(document, { resultTypes: ["violations"] })',
  );
  return result.violations
    .filter((violation) => violation.impact === 'serious' || violation.impact === 'critical')
    .map((violation) => `${violation.id} (${violation.impact}) at ${JSON.stringify(violation.nodes.map((node) => node.target))}`);
}

const flows: { language: Language; viewport: keyof typeof viewports }[] = [
  { language: 'en', viewport: 'desktop' },
  { language: 'ja', viewport: 'phone' },
];

describe.skipIf(chromiumMissing)('self-service in headless Chromium', () => {
  for (const { language, viewport } of flows) {
    it(
      `registers, verifies, signs in to a service, consents, revokes it and deletes the account (${language}, ${viewport})`,
      { timeout: 120_000 },
      async () => {
        const t = translator(language);
        const shot = (step: string) => screenshot(page, `${language}-${viewport}-${step}`);
        const { context, cspViolations } = await newContext(viewports[viewport]);
        const page = await context.newPage();
        const overflowing: string[] = [];
        page.on('load', async () => {
          if (viewport === 'phone' && (await overflowsHorizontally(page).catch(() => false))) overflowing.push(page.url());
        });
        const serviceName = `Travel ${language}`;
        const { registered, config, request } = await registerService(serviceName);
        const email = uniqueEmail(`browser-${language}`);
        const password = 'correct horse battery staple';

        // The service sends the person to the sign-in page; Japanese is picked with the switcher.
        await page.goto(request.url.href);
        if (language === 'ja') await page.getByRole('link', { name: '日本語' }).click();
        expect(await page.getAttribute('html', 'lang')).toBe(language);
        await expect.poll(() => page.title()).toContain(t('login.title'));
        await shot('01-sign-in');

        await page.getByRole('link', { name: t('login.createAccount') }).click();
        await page.getByLabel(t('form.name')).fill(language === 'ja' ? '山田 花子' : 'Ada Lovelace');
        await page.getByLabel(t('form.email')).fill(email);
        await page.getByLabel(t('form.password'), { exact: true }).fill(password);
        await shot('02-register');
        await page.getByRole('button', { name: t('register.submit') }).click();

        await page.getByRole('heading', { name: t('consent.heading', { service: serviceName }), exact: true }).waitFor();
        expect(await page.textContent('main')).toContain(t('scope.email'));
        await shot('03-consent');
        await page.getByRole('button', { name: t('consent.allow') }).click();

        // Back at the service, which redeems the code: signed in at once, email not yet verified.
        await page.waitForURL(`${serviceOrigin}/cb?**`);
        const tokens = await oidc.authorizationCodeGrant(config, new URL(page.url()), {
          pkceCodeVerifier: request.verifier,
          expectedState: request.state,
          expectedNonce: request.nonce,
        });
        const sub = tokens.claims()!.sub;
        expect(await oidc.fetchUserInfo(config, tokens.access_token, sub)).toMatchObject({ email, email_verified: false });

        const mail = await latestMail(server.db, email, 'verify_email');
        expect(mail.language).toBe(language);
        await page.goto(linkIn(mail.body));
        await shot('04-verify-confirm');
        await page.getByRole('button', { name: t('verify.submit') }).click();
        await page.getByRole('heading', { name: t('verify.done.title'), exact: true }).waitFor();
        await shot('05-verified');
        expect(await oidc.fetchUserInfo(config, tokens.access_token, sub)).toMatchObject({ email_verified: true });

        await page.goto(`${server.issuer}/account`);
        await page.getByRole('heading', { name: t('accountSignIn.title'), exact: true }).waitFor();
        await shot('06-account-sign-in');
        await page.getByLabel(t('form.email')).fill(email);
        await page.getByLabel(t('form.password')).fill(password);
        await page.getByRole('button', { name: t('login.submit') }).click();
        await page.getByRole('heading', { name: t('profile.title'), exact: true }).waitFor();
        expect(await page.textContent('.badge')).toBe(t('email.verified'));
        await shot('07-account-profile');

        await page.getByRole('link', { name: t('account.nav.services') }).click();
        await page.getByRole('heading', { name: serviceName, exact: true }).waitFor();
        await shot('08-account-services');
        await page.getByRole('button', { name: t('services.revoke', { service: serviceName }) }).click();
        await page.getByText(t('services.revoked')).waitFor();
        await shot('09-account-service-revoked');
        expect((await artefactCounts(server.db, (await accountIdOf(email))!))['Grant'] ?? 0).toBe(0);
        await waitFor(() => backchannel.tokens.some((token) => audienceOf(token) === registered.client.clientId));

        await page.getByRole('link', { name: t('account.nav.activity') }).click();
        await page.getByRole('heading', { name: t('activity.title'), exact: true }).waitFor();
        expect(await page.textContent('main')).toContain(t('activity.deviceValue', { browser: 'Chrome', os: 'Linux' }));
        await shot('10-account-activity');

        await page.getByRole('link', { name: t('account.nav.password') }).click();
        await page.getByRole('heading', { name: t('password.title'), exact: true }).waitFor();
        await shot('11-account-password');

        await page.getByRole('link', { name: t('account.nav.data') }).click();
        await page.getByRole('heading', { name: t('data.title'), exact: true }).waitFor();
        await shot('12-account-data');
        const download = page.waitForEvent('download');
        await page.getByRole('button', { name: t('data.download.submit') }).click();
        const exported = JSON.parse(await streamText(await (await download).createReadStream()));
        expect(exported.account.email).toBe(email);

        await page.getByRole('link', { name: t('data.delete.link') }).click();
        await page.getByLabel(t('delete.password')).fill(password);
        await page.getByLabel(t('delete.confirm')).check();
        await shot('13-account-delete');
        const accountId = (await accountIdOf(email))!;
        const deliveredBefore = backchannel.tokens.length;
        await page.getByRole('button', { name: t('delete.submit') }).click();
        await page.getByRole('heading', { name: t('delete.done.title'), exact: true }).waitFor();
        await shot('14-account-deleted');

        expect(await accountIdOf(email)).toBeUndefined();
        expect(await artefactCounts(server.db, accountId)).toEqual({});
        await waitFor(() => backchannel.tokens.length > deliveredBefore);
        expect(cspViolations).toEqual([]);
        expect(overflowing).toEqual([]);
        await context.close();
      },
    );
  }

  for (const { language, viewport } of flows) {
    it(
      `offers an optional item unticked, shares it once ticked, and withdraws it on the account page (${language}, ${viewport})`,
      { timeout: 90_000 },
      async () => {
        const t = translator(language);
        const { context } = await newContext(viewports[viewport], { bypassCSP: true });
        const page = await context.newPage();
        const shot = (step: string) => screenshot(page, `${language}-${viewport}-optional-${step}`);
        const person = await createTestAccount(server.db);
        const serviceName = `Points ${language}`;
        const registered = await createTestClient(server.db, server.validator, {
          name: serviceName,
          redirectUris: [`${serviceOrigin}/cb`],
          scopes: ['openid', 'profile'],
          optionalScopes: ['email'],
        });
        const config = await discoverClient(server.issuer, registered.client.clientId, registered.clientSecret);
        const request = await startAuthorization(config, `${serviceOrigin}/cb`, 'openid profile email');

        await page.goto(`${server.issuer}/lang/${language}?next=/account/sign-in`);
        await page.goto(request.url.href);
        await page.getByLabel(t('form.email')).fill(person.email);
        await page.getByLabel(t('form.password')).fill(person.password);
        await page.getByRole('button', { name: t('login.submit') }).click();
        await page.getByRole('heading', { name: t('consent.heading', { service: serviceName }), exact: true }).waitFor();
        const emailBox = page.getByRole('checkbox', { name: t('scope.email') });
        expect(await emailBox.isChecked()).toBe(false);
        expect(await page.textContent('main')).toContain(t('scope.profile')); // required: listed, no checkbox
        expect(await page.getByRole('group', { name: t('consent.optional.legend', { service: serviceName }) }).count()).toBe(1);
        await shot('01-consent');
        expect(await seriousViolations(page)).toEqual([]);
        await emailBox.check();
        await page.getByRole('button', { name: t('consent.allow') }).click();
        await page.waitForURL(`${serviceOrigin}/cb?**`);
        const tokens = await oidc.authorizationCodeGrant(config, new URL(page.url()), {
          pkceCodeVerifier: request.verifier,
          expectedState: request.state,
          expectedNonce: request.nonce,
        });
        expect(tokens.claims()).toMatchObject({ email: person.email });

        await page.goto(`${server.issuer}/account`);
        await page.getByLabel(t('form.email')).fill(person.email);
        await page.getByLabel(t('form.password')).fill(person.password);
        await page.getByRole('button', { name: t('login.submit') }).click();
        await page.getByRole('link', { name: t('account.nav.services') }).click();
        await page.getByRole('heading', { name: serviceName, exact: true }).waitFor();
        await shot('02-services');
        expect(await seriousViolations(page)).toEqual([]);
        await page.getByRole('button', { name: t('services.withdraw', { service: serviceName }) }).click();
        await page.getByText(t('services.withdrawn')).waitFor();
        await shot('03-withdrawn');
        // The next sign-in (single sign-on, no new consent) no longer carries it.
        const again = await startAuthorization(config, `${serviceOrigin}/cb`, 'openid profile');
        await page.goto(again.url.href);
        await page.waitForURL(`${serviceOrigin}/cb?**`);
        const next = await oidc.authorizationCodeGrant(config, new URL(page.url()), {
          pkceCodeVerifier: again.verifier,
          expectedState: again.state,
          expectedNonce: again.nonce,
        });
        expect(next.claims()).not.toHaveProperty('email');
        expect(next.claims()).toMatchObject({ name: person.name });
        await context.close();
      },
    );
  }

  it('can be used with the keyboard alone, with a visible focus ring', { timeout: 60_000 }, async () => {
    const account = await createTestAccount(server.db);
    const { context } = await newContext(viewports.desktop);
    const page = await context.newPage();
    await page.goto(`${server.issuer}/account/sign-in`);
    const focused = () =>
      page.evaluate<{ id: string; text: string; outline: string }>(
        '({ id: document.activeElement.id, text: document.activeElement.textContent.trim(), outline: getComputedStyle(document.activeElement).outlineStyle })',
      );
    // The sign-in form starts in the email field (autofocus); the keyboard does the rest.
    expect((await focused()).id).toBe('email');
    await page.keyboard.type(account.email);
    await page.keyboard.press('Tab');
    expect(await focused()).toMatchObject({ id: 'password', outline: 'solid' });
    await page.keyboard.type(account.password);
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Your details', exact: true }).waitFor();
    // First stop on a page: the skip link, shown when focused.
    await page.keyboard.press('Tab');
    expect(await focused()).toMatchObject({ text: 'Skip to content', outline: 'solid' });
    for (let presses = 0; presses < 20 && (await focused()).text !== 'Connected services'; presses += 1) await page.keyboard.press('Tab');
    expect(await focused()).toMatchObject({ text: 'Connected services', outline: 'solid' });
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Connected services', exact: true }).waitFor();
    await context.close();
  });

  it('refuses an injected inline script (which is why the axe scans of every-page-*.test.ts bypass the CSP)', async () => {
    const { context: strict } = await newContext(viewports.desktop);
    const strictPage = await strict.newPage();
    await strictPage.goto(`${server.issuer}/account/sign-in`);
    await expect(strictPage.addScriptTag({ content: 'window.injected = true' })).rejects.toThrow();
    await strict.close();
  });
});

async function accountIdOf(email: string): Promise<string | undefined> {
  const { rows } = await server.db.query<{ id: string }>('SELECT id FROM accounts WHERE lower(email) = lower($1)', [email]);
  return rows[0]?.id;
}

function audienceOf(logoutToken: string): unknown {
  return (JSON.parse(Buffer.from(logoutToken.split('.')[1]!, 'base64url').toString()) as { aud?: unknown }).aud;
}

async function streamText(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
