import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import axe from 'axe-core';
import * as oidc from 'openid-client';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deviceCodeGrant } from '../../src/clients/store.js';
import { acrLevels } from '../../src/factors/levels.js';
import { translator, type Language } from '../../src/i18n/catalogue.js';
import { chromiumMissing, launchChromium, screenshot } from './chromium.js';
import { createTestAccount, createTestClient, uniqueEmail } from './fixtures.js';
import { discoverClient, startAuthorization } from './oidc-client.js';
import { latestMail, linkIn } from './self-service.js';
import { startTestServer, type TestServer } from './server.js';
import { totpCode } from './strong-sign-in.js';

/**
 * Every hosted page, in each language, in headless Chromium at a phone's width: each page is
 * scanned with axe-core, checked for text outside its box, and saved as a screenshot
 * (test-artifacts/screenshots/lang-<language>-<nn>-<page>.png). The browser's own language
 * is the page language's, so Accept-Language picks it; nothing else is set.
 */

const phone = { width: 390, height: 844 };
const browserLocales: Record<Language, string> = {
  en: 'en-GB',
  ja: 'ja-JP',
  'zh-Hant': 'zh-TW',
  ko: 'ko-KR',
  fr: 'fr-FR',
  de: 'de-DE',
  es: 'es-ES',
};

/** Serious and critical axe-core findings on the page (axe is loaded into every page of the profile). */
async function seriousViolations(page: Page): Promise<string[]> {
  const result = await page.evaluate<{ violations: { id: string; impact: string | null; nodes: { target: unknown }[] }[] }>(
    'axe.run(document, { resultTypes: ["violations"] })',
  );
  return result.violations
    .filter((violation) => violation.impact === 'serious' || violation.impact === 'critical')
    .map((violation) => `${violation.id} (${violation.impact}) at ${JSON.stringify(violation.nodes.map((node) => node.target))}`);
}

/**
 * Elements whose content does not fit: past the right edge of the screen, or wider than
 * their own box (a word or a button label that does not wrap). Elements parked off-screen on
 * purpose (the skip link, a phone table's header) and scroll containers are left out.
 */
const overflowScript = `(() => {
  const width = document.documentElement.clientWidth;
  const found = [];
  if (document.documentElement.scrollWidth > width + 1) found.push('the page scrolls sideways');
  for (const element of document.body.querySelectorAll('*')) {
    const rect = element.getBoundingClientRect();
    if (rect.width === 0 || rect.height === 0 || rect.right <= 0) continue;
    const style = getComputedStyle(element);
    if (style.visibility === 'hidden') continue;
    const name = element.tagName.toLowerCase() + (element.id ? '#' + element.id : '') + ' "' + (element.textContent || '').trim().slice(0, 50) + '"';
    if (rect.right > width + 1) found.push(name + ' goes past the right edge');
    else if (!['INPUT', 'SELECT', 'TEXTAREA', 'IMG', 'svg', 'CANVAS'].includes(element.tagName) && !['auto', 'scroll'].includes(style.overflowX)
      && element.clientWidth > 0 && element.scrollWidth > element.clientWidth + 1) found.push(name + ' is wider than its box');
  }
  return found;
})()`;

interface Walk {
  server: TestServer;
  browser: Browser;
  serviceOrigin: string;
}

/** Goes through every page in `language`; returns what was wrong, per page. */
async function walkEveryPage({ server, browser, serviceOrigin }: Walk, language: Language): Promise<Record<string, string[]>> {
  const t = translator(language);
  const problems: Record<string, string[]> = {};
  let step = 0;
  const newPage = async () => {
    const context = await browser.newContext({ viewport: phone, locale: browserLocales[language], bypassCSP: true });
    await context.addInitScript({ content: axe.source });
    return { context, page: await context.newPage() };
  };
  const check = async (page: Page, name: string) => {
    step += 1;
    const label = `${String(step).padStart(2, '0')}-${name}`;
    const found: string[] = [];
    const lang = await page.getAttribute('html', 'lang');
    if (lang !== language) found.push(`html lang is ${lang}`);
    found.push(...(await page.evaluate<string[]>(overflowScript)), ...(await seriousViolations(page)));
    await screenshot(page, `lang-${language}-${label}`);
    if (found.length) problems[label] = found;
  };
  const button = (page: Page, text: string) => page.getByRole('button', { name: text, exact: true });

  const travel = await createTestClient(server.db, server.validator, {
    name: 'Travel',
    redirectUris: [`${serviceOrigin}/cb`],
    scopes: ['openid', 'profile', 'email'],
    optionalScopes: ['profile'],
  });
  const travelConfig = await discoverClient(server.issuer, travel.client.clientId, travel.clientSecret);
  const authorizeTravel = async () => (await startAuthorization(travelConfig, `${serviceOrigin}/cb`, 'openid profile email')).url.href;

  const { context, page } = await newPage();
  const email = uniqueEmail(`every-page-${language}`);
  const password = 'a phrase long enough to pass';

  // A service sends the person to sign in; a wrong password; registration with and without errors; consent.
  await page.goto(await authorizeTravel());
  await check(page, 'sign-in');
  await page.fill('[name=email]', uniqueEmail('nobody'));
  await page.fill('[name=password]', 'not the password');
  await button(page, t('login.submit')).click();
  await page.locator('.error').first().waitFor();
  await check(page, 'sign-in-error');
  await page.getByRole('link', { name: t('login.createAccount') }).click();
  await button(page, t('register.submit')).click();
  await page.locator('.error').first().waitFor();
  await check(page, 'register-error');
  await page.fill('[name=name]', 'Ada Lovelace');
  await page.fill('[name=email]', email);
  await page.fill('[name=password]', password);
  await button(page, t('register.submit')).click();
  await button(page, t('consent.allow')).waitFor();
  await check(page, 'consent');
  await button(page, t('consent.allow')).click();
  await page.waitForURL(`${serviceOrigin}/cb?**`);

  // The verification link, then the account pages with their own sign-in.
  await page.goto(linkIn((await latestMail(server.db, email, 'verify_email')).body));
  await check(page, 'verify');
  await button(page, t('verify.submit')).click();
  await page.getByRole('heading', { name: t('verify.done.title') }).waitFor();
  await check(page, 'verify-done');
  await page.goto(`${server.issuer}/account`);
  await check(page, 'account-sign-in');
  await page.fill('[name=email]', email);
  await page.fill('[name=password]', password);
  await button(page, t('login.submit')).click();
  await page.getByRole('heading', { name: t('profile.title'), exact: true }).waitFor();
  await check(page, 'account-profile');
  await button(page, t('profile.submit')).click();
  await page.getByText(t('profile.saved')).waitFor();
  await check(page, 'account-profile-saved');
  for (const [path, title] of [
    ['/account/password', 'password.title'],
    ['/account/services', 'services.title'],
    ['/account/activity', 'activity.title'],
    ['/account/data', 'data.title'],
    ['/account/delete', 'delete.title'],
  ] as const) {
    await page.goto(`${server.issuer}${path}`);
    await page.getByRole('heading', { name: t(title), exact: true }).waitFor();
    await check(page, path.slice(1).replace('/', '-'));
  }
  await button(page, t('delete.submit')).click();
  await page.locator('.error').first().waitFor();
  await check(page, 'account-delete-error');

  // An authenticator app: the security page, its setup, the recovery codes.
  await page.goto(`${server.issuer}/account/security`);
  await check(page, 'account-security');
  await page.getByRole('link', { name: t('security.authenticator.setUp'), exact: true }).click();
  const secret = (await page.locator('#totp-secret').textContent())!.trim();
  await check(page, 'authenticator-setup');
  await button(page, t('authenticator.submit')).click();
  await page.locator('.error').first().waitFor();
  await check(page, 'authenticator-setup-error');
  await page.fill('[name=code]', totpCode(secret));
  await button(page, t('authenticator.submit')).click();
  await page.locator('#recovery-codes').waitFor();
  const recoveryCode = (await page.locator('#recovery-codes li').first().textContent())!.trim();
  await check(page, 'recovery-codes');
  await page.getByRole('link', { name: t('recoveryCodes.done'), exact: true }).click();
  await page.getByRole('heading', { name: t('security.title'), exact: true }).waitFor();
  await check(page, 'account-security-with-factor');

  // Device sign-in on this signed-in browser: the code, the confirmation, consent, done.
  const tv = await createTestClient(server.db, server.validator, {
    name: 'Video',
    public: true,
    redirectUris: [],
    grantTypes: [deviceCodeGrant],
  });
  const tvConfig = await discoverClient(server.issuer, tv.client.clientId, undefined);
  const device = await oidc.initiateDeviceAuthorization(tvConfig, { scope: 'openid' });
  await page.goto(`${server.issuer}/device`);
  await check(page, 'device-code');
  await page.fill('[name=user_code]', device.user_code);
  await button(page, t('device.code.submit')).click();
  await button(page, t('device.confirm.yes')).waitFor();
  await check(page, 'device-confirm');
  await button(page, t('device.confirm.yes')).click();
  await page.waitForLoadState();
  if (await button(page, t('consent.allow')).count()) await button(page, t('consent.allow')).click();
  await page.getByRole('heading', { name: t('device.done.title') }).waitFor();
  await check(page, 'device-done');

  // Signing out: the question, then the answer.
  await page.goto(`${server.issuer}/session/end`);
  await check(page, 'logout');
  await button(page, t('logout.yes')).click();
  await page.getByRole('heading', { name: t('loggedOut.title') }).waitFor();
  await check(page, 'logged-out');

  // The second step, in a fresh browser: the page, then a recovery code.
  const second = await newPage();
  await second.page.goto(await authorizeTravel());
  await second.page.fill('[name=email]', email);
  await second.page.fill('[name=password]', password);
  await button(second.page, t('login.submit')).click();
  await second.page.getByRole('heading', { name: t('secondStep.title') }).waitFor();
  await check(second.page, 'second-step');
  await second.page.getByText(t('secondStep.recovery.summary')).click();
  await second.page.fill('[name=recovery_code]', 'AAAA-AAAA-AAAA');
  await button(second.page, t('secondStep.recovery.submit')).click();
  await second.page.locator('.error').first().waitFor();
  await check(second.page, 'second-step-error');
  // After a wrong code the recovery form comes back open.
  expect(await second.page.locator('[name=recovery_code]').isVisible()).toBe(true);
  await second.page.fill('[name=recovery_code]', recoveryCode);
  await button(second.page, t('secondStep.recovery.submit')).click();
  // The optional item left unticked at the first consent is asked for again, alone.
  await button(second.page, t('consent.allow')).click();
  await second.page.waitForURL(`${serviceOrigin}/cb?**`);
  await second.context.close();

  // A service that needs 2-step verification, for a person without it: the setup offer.
  const bank = await createTestClient(server.db, server.validator, {
    name: 'Bank',
    redirectUris: [`${serviceOrigin}/cb`],
    requireAcr: acrLevels.twoFactors,
  });
  const bankConfig = await discoverClient(server.issuer, bank.client.clientId, bank.clientSecret);
  const plain = await createTestAccount(server.db, { locale: language });
  const third = await newPage();
  await third.page.goto((await startAuthorization(bankConfig, `${serviceOrigin}/cb`, 'openid')).url.href);
  await third.page.fill('[name=email]', plain.email);
  await third.page.fill('[name=password]', plain.password);
  await button(third.page, t('login.submit')).click();
  await third.page.getByRole('heading', { name: t('setup.title'), exact: true }).waitFor();
  await check(third.page, 'setup-offer');
  await third.context.clearCookies();
  await third.page.goto(`${server.issuer}/account/sign-in/second-step`);
  await check(third.page, 'sign-in-expired');
  await third.context.close();

  // A forgotten password: the form, the answer, the link, and a link that does not work.
  await page.goto(`${server.issuer}/password/forgot`);
  await check(page, 'forgot');
  await page.fill('[name=email]', email);
  await button(page, t('forgot.submit')).click();
  await page.getByRole('heading', { name: t('forgot.sent.title') }).waitFor();
  await check(page, 'forgot-sent');
  await page.goto(linkIn((await latestMail(server.db, email, 'reset_password')).body));
  await page.getByRole('heading', { name: t('reset.title') }).waitFor();
  await check(page, 'reset');
  await page.goto(`${server.issuer}/password/reset?token=nope`);
  await check(page, 'link-invalid');

  // Errors: a page that does not exist, and a request no service could have sent.
  await page.goto(`${server.issuer}/no-such-page`);
  await check(page, 'not-found');
  await page.goto(`${server.issuer}/auth?client_id=nobody&response_type=code&scope=openid`);
  await check(page, 'error');
  await context.close();
  return problems;
}

/** One test per language: every page, at a phone's width. */
export function describeEveryPage(languages: readonly Language[]): void {
  let server: TestServer;
  let browser: Browser;
  let service: Server;
  let serviceOrigin: string;

  beforeAll(async () => {
    if (chromiumMissing) return;
    // A host name, not an IP: the security pages offer passkeys only there.
    server = await startTestServer({ hostName: 'localhost' });
    browser = await launchChromium();
    service = createServer((_req, res) =>
      res.setHeader('content-type', 'text/html').end('<!doctype html><title>Service</title><h1>Service</h1>'),
    );
    await new Promise<void>((resolve) => service.listen(0, '127.0.0.1', resolve));
    serviceOrigin = `http://127.0.0.1:${(service.address() as AddressInfo).port}`;
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await new Promise<void>((resolve) => (service ? service.close(() => resolve()) : resolve()));
    await server?.close();
  });

  describe.skipIf(chromiumMissing)('every page at a phone’s width, in headless Chromium', () => {
    for (const language of languages) {
      it(`in ${language}: no serious axe finding, no text outside its box`, { timeout: 120_000 }, async () => {
        expect(await walkEveryPage({ server, browser, serviceOrigin }, language)).toEqual({});
      });
    }
  });
}
