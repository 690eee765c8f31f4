import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import axe from 'axe-core';
import { decodeJwt } from 'jose';
import * as oidc from 'openid-client';
import type { Browser, BrowserContext, CDPSession, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { acrLevels } from '../../src/factors/levels.js';
import { translator, type Language } from '../../src/i18n/catalogue.js';
import { chromiumMissing, launchChromium, overflowsHorizontally, screenshot } from '../helpers/chromium.js';
import { createTestAccount, createTestClient } from '../helpers/fixtures.js';
import { LogoutListener, waitFor } from '../helpers/listener.js';
import { discoverClient, startAuthorization } from '../helpers/oidc-client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { latestMail } from '../helpers/self-service.js';
import { totpCode } from '../helpers/strong-sign-in.js';

/*
 * Passkeys, authenticator apps, recovery codes, step-up and the session list through the
 * real pages in headless Chromium, with Chrome's virtual authenticator (DevTools protocol:
 * ctap2, internal, resident keys, user verification) standing in for Touch ID or Windows
 * Hello. WebAuthn refuses IP addresses: the issuer is http://localhost:PORT.
 */

let server: TestServer;
let browser: Browser;
let service: Server;
let serviceOrigin: string;
let backchannel: LogoutListener;

beforeAll(async () => {
  if (chromiumMissing) return;
  server = await startTestServer({ hostName: 'localhost' });
  browser = await launchChromium();
  backchannel = await new LogoutListener().start();
  service = createServer((_req, res) =>
    res.setHeader('content-type', 'text/html').end('<!doctype html><title>Service</title><h1>Back at the service</h1>'),
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
const flows: { language: Language; viewport: keyof typeof viewports }[] = [
  { language: 'en', viewport: 'desktop' },
  { language: 'ja', viewport: 'phone' },
];

interface Profile {
  context: BrowserContext;
  page: Page;
  cdp: CDPSession;
  authenticatorId: string;
  cspViolations: string[];
  overflowing: string[];
}

/**
 * A browser profile in `language` with a virtual platform authenticator. `autofill: false`
 * plays a browser without passkey autofill (conditional mediation), so the button is what
 * signs in. axe-core is injected as an inline script, which our CSP refuses: scans run in a
 * profile that bypasses it (`scan: true`); every other profile records CSP refusals.
 */
async function profile(language: Language, viewport: keyof typeof viewports, options: { autofill?: boolean; scan?: boolean } = {}) {
  const context = await browser.newContext({
    viewport: viewports[viewport],
    locale: language === 'ja' ? 'ja-JP' : 'en-GB',
    ...(options.scan ? { bypassCSP: true } : {}),
  });
  // Loaded as the profile's init script: cheaper than injecting it into each page scanned.
  if (options.scan) await context.addInitScript({ content: axe.source });
  if (options.autofill === false) {
    await context.addInitScript('PublicKeyCredential.isConditionalMediationAvailable = () => Promise.resolve(false);');
  }
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  await cdp.send('WebAuthn.enable', { enableUI: false });
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2',
      transport: 'internal',
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });
  const cspViolations: string[] = [];
  context.on('console', (message) => {
    if (/Content Security Policy/i.test(message.text())) cspViolations.push(message.text());
  });
  const overflowing: string[] = [];
  page.on('load', async () => {
    if (viewport === 'phone' && (await overflowsHorizontally(page).catch(() => false))) overflowing.push(page.url());
  });
  return { context, page, cdp, authenticatorId, cspViolations, overflowing } satisfies Profile;
}

async function seriousViolations(page: Page): Promise<string[]> {
  const result = await page.evaluate<{ violations: { id: string; impact: string | null; nodes: { target: unknown }[] }[] }>(
    'axe.run(document, { resultTypes: ["violations"] })',
  );
  return result.violations
    .filter((violation) => violation.impact === 'serious' || violation.impact === 'critical')
    .map((violation) => `${violation.id} (${violation.impact}) at ${JSON.stringify(violation.nodes.map((node) => node.target))}`);
}

async function registerService(name: string, extra: { requireAcr?: (typeof acrLevels)[keyof typeof acrLevels] } = {}) {
  const registered = await createTestClient(server.db, server.validator, {
    name,
    redirectUris: [`${serviceOrigin}/cb`],
    backchannelLogoutUri: backchannel.url,
    ...extra,
  });
  const config = await discoverClient(server.issuer, registered.client.clientId, registered.clientSecret);
  return { registered, config };
}

/** Sends the browser to the service's sign-in and returns what redeeming the callback yields, once it is reached. */
async function serviceSignIn(page: Page, config: oidc.Configuration, extra: Record<string, string> = {}) {
  const request = await startAuthorization(config, `${serviceOrigin}/cb`, 'openid profile');
  const url = new URL(request.url);
  for (const [key, value] of Object.entries(extra)) url.searchParams.set(key, value);
  await page.goto(url.href);
  return {
    async tokens() {
      await page.waitForURL(`${serviceOrigin}/cb?**`);
      return oidc.authorizationCodeGrant(config, new URL(page.url()), {
        pkceCodeVerifier: request.verifier,
        expectedState: request.state,
        expectedNonce: request.nonce,
      });
    },
  };
}

async function allowIfAsked(page: Page, t: ReturnType<typeof translator>) {
  const allow = page.getByRole('button', { name: t('consent.allow') });
  await Promise.race([allow.waitFor().then(() => allow.click()), page.waitForURL(`${serviceOrigin}/cb?**`)]);
}

async function signInToAccountPages(page: Page, t: ReturnType<typeof translator>, account: { email: string; password: string }) {
  await page.goto(`${server.issuer}/account/sign-in?next=/account/security`);
  await page.getByLabel(t('form.email')).fill(account.email);
  await page.getByLabel(t('form.password')).fill(account.password);
  await page.getByRole('button', { name: t('login.submit'), exact: true }).click();
}

describe.skipIf(chromiumMissing)('strong sign-in in headless Chromium', () => {
  for (const { language, viewport } of flows) {
    it(
      `adds a passkey, signs in to a service with it alone (button and autofill), removes it (${language}, ${viewport})`,
      { timeout: 90_000 },
      async () => {
        const t = translator(language);
        const shot = (step: string) => screenshot(profileA.page, `${language}-${viewport}-passkey-${step}`);
        const account = await createTestAccount(server.db, { locale: language });
        const profileA = await profile(language, viewport, { autofill: false });
        const { page } = profileA;

        await signInToAccountPages(page, t, account);
        await page.getByRole('heading', { name: t('security.title'), exact: true }).waitFor();
        await shot('01-security');
        await page.getByLabel(t('passkey.nameLabel')).fill(language === 'ja' ? 'ノートPC' : 'Laptop');
        await page.getByRole('button', { name: t('passkey.add') }).click();
        await page.locator('#recovery-codes').waitFor();
        expect(await page.locator('#recovery-codes li').count()).toBe(10);
        await shot('02-recovery-codes');
        // The notice goes out in the language the person uses the pages in.
        const notice = await latestMail(server.db, account.email, 'factor_added');
        expect(notice.language).toBe(language);
        expect(notice.subject).toBe(t('mail.factorAdded.subject'));
        await page.getByRole('link', { name: t('recoveryCodes.done') }).click();
        await page.getByRole('heading', { name: language === 'ja' ? 'ノートPC' : 'Laptop' }).waitFor();
        await shot('03-security-with-passkey');
        await page.getByRole('button', { name: t('account.signOut'), exact: true }).click();

        // A service's sign-in: the passkey alone, by its button.
        const { config } = await registerService(`Shop ${language}`);
        const signIn = await serviceSignIn(page, config);
        await page.getByRole('button', { name: t('login.passkey') }).waitFor();
        await shot('04-sign-in-with-passkey-button');
        await page.getByRole('button', { name: t('login.passkey') }).click();
        await allowIfAsked(page, t);
        const claims = (await signIn.tokens()).claims()!;
        expect(claims.amr).toEqual(['hwk', 'mfa']);
        expect(claims.acr).toBe(acrLevels.phishingResistant);

        // Passkey autofill: another browser with the same (synced) passkey offers it in the email
        // field; the virtual authenticator picks it, and the person is signed in without a click.
        const { credentials } = await profileA.cdp.send('WebAuthn.getCredentials', { authenticatorId: profileA.authenticatorId });
        const profileB = await profile(language, viewport);
        await profileB.cdp.send('WebAuthn.addCredential', { authenticatorId: profileB.authenticatorId, credential: credentials[0]! });
        const autofilled = await serviceSignIn(profileB.page, config);
        const autofillClaims = (await autofilled.tokens()).claims()!;
        expect(autofillClaims.amr).toEqual(['hwk', 'mfa']);
        expect(autofillClaims.sub).toBe(claims.sub);
        expect(profileB.cspViolations).toEqual([]);
        // A synced passkey carries its signature counter along: the first browser's copy catches up,
        // or the server would take its next (lower) count for a cloned authenticator.
        const synced = await profileB.cdp.send('WebAuthn.getCredentials', { authenticatorId: profileB.authenticatorId });
        await profileA.cdp.send('WebAuthn.removeCredential', {
          authenticatorId: profileA.authenticatorId,
          credentialId: credentials[0]!.credentialId,
        });
        await profileA.cdp.send('WebAuthn.addCredential', {
          authenticatorId: profileA.authenticatorId,
          credential: synced.credentials[0]!,
        });
        await profileB.context.close();

        // The account pages: the password, then the passkey as the second step.
        await signInToAccountPages(page, t, account);
        await page.getByRole('heading', { name: t('secondStep.title'), exact: true }).waitFor();
        await shot('05-second-step-passkey');
        await page.getByRole('button', { name: t('secondStep.passkey') }).click();
        await page.getByRole('heading', { name: t('security.title'), exact: true }).waitFor();

        // Removing the passkey (the last second factor: with the password) stops it signing in.
        await page.getByLabel(t('form.currentPassword')).fill(account.password);
        await page
          .getByRole('button', { name: t('security.passkeys.remove', { name: language === 'ja' ? 'ノートPC' : 'Laptop' }) })
          .click();
        await page.getByText(t('security.done.passkeyRemoved')).waitFor();
        await page.getByRole('button', { name: t('account.signOut'), exact: true }).click();
        await serviceSignIn(page, config, { prompt: 'login' });
        await page.getByRole('button', { name: t('login.passkey') }).click();
        await page.getByText(t('passkey.error.invalid')).waitFor();
        await shot('06-removed-passkey-refused');
        expect(profileA.cspViolations).toEqual([]);
        expect(profileA.overflowing).toEqual([]);
        await profileA.context.close();
      },
    );
  }

  for (const { language, viewport } of flows) {
    it(
      `sets up an authenticator app, signs in where two factors are required, and uses a recovery code once (${language}, ${viewport})`,
      { timeout: 90_000 },
      async () => {
        const t = translator(language);
        const account = await createTestAccount(server.db, { locale: language });
        const { context, page, cspViolations, overflowing } = await profile(language, viewport);
        const shot = (step: string) => screenshot(page, `${language}-${viewport}-totp-${step}`);

        await signInToAccountPages(page, t, account);
        await page.getByRole('link', { name: t('security.authenticator.setUp') }).click();
        await page.getByRole('heading', { name: t('authenticator.title'), exact: true }).waitFor();
        await shot('01-authenticator-setup');
        const secret = (await page.locator('#totp-secret').textContent())!.trim();
        await page.getByLabel(t('authenticator.enterCode')).fill(totpCode(secret));
        await page.getByRole('button', { name: t('authenticator.submit') }).click();
        await page.locator('#recovery-codes').waitFor();
        const codes = await page.locator('#recovery-codes li').allTextContents();
        expect(codes).toHaveLength(10);
        await page.getByRole('link', { name: t('recoveryCodes.done') }).click();
        await page.getByText(t('security.authenticator.on')).waitFor();
        await page.getByRole('button', { name: t('account.signOut'), exact: true }).click();

        const { config } = await registerService(`Payments ${language}`, { requireAcr: acrLevels.twoFactors });
        const signIn = await serviceSignIn(page, config);
        await page.getByLabel(t('form.email')).fill(account.email);
        await page.getByLabel(t('form.password')).fill(account.password);
        await page.getByRole('button', { name: t('login.submit'), exact: true }).click();
        await page.getByRole('heading', { name: t('secondStep.title'), exact: true }).waitFor();
        await shot('02-second-step');
        // The setup spent the current step; the app's next code is what the person would wait for.
        await page.getByLabel(t('secondStep.code.label')).fill(totpCode(secret, 1));
        await page.getByRole('button', { name: t('secondStep.code.submit') }).click();
        await allowIfAsked(page, t);
        const claims = (await signIn.tokens()).claims()!;
        expect(claims.amr).toEqual(['pwd', 'otp', 'mfa']);
        expect(claims.acr).toBe(acrLevels.twoFactors);

        // A recovery code instead of the app, once.
        for (const attempt of ['first', 'again'] as const) {
          await serviceSignIn(page, config, { prompt: 'login' });
          await page.getByLabel(t('form.email')).fill(account.email);
          await page.getByLabel(t('form.password')).fill(account.password);
          await page.getByRole('button', { name: t('login.submit'), exact: true }).click();
          await page.getByText(t('secondStep.recovery.summary')).click();
          await page.getByLabel(t('secondStep.recovery.label')).fill(codes[0]!);
          await page.getByRole('button', { name: t('secondStep.recovery.submit') }).click();
          if (attempt === 'first') await page.waitForURL(`${serviceOrigin}/cb?**`);
          else await page.getByText(t('secondStep.error.recovery')).waitFor();
        }
        await shot('03-recovery-code-refused');
        expect(cspViolations).toEqual([]);
        expect(overflowing).toEqual([]);
        await context.close();
      },
    );
  }

  it(
    'offers a person without a second factor to set one up when a service requires it: declined, then a passkey there and then',
    { timeout: 90_000 },
    async () => {
      for (const language of ['en', 'ja'] as const) {
        const t = translator(language);
        const account = await createTestAccount(server.db, { locale: language });
        const { context, page, cspViolations } = await profile(language, language === 'en' ? 'desktop' : 'phone', { autofill: false });
        const { config } = await registerService(`Bank ${language}`, { requireAcr: acrLevels.twoFactors });
        const signInWithPassword = async () => {
          await page.getByLabel(t('form.email')).fill(account.email);
          await page.getByLabel(t('form.password')).fill(account.password);
          await page.getByRole('button', { name: t('login.submit'), exact: true }).click();
          await page.getByRole('heading', { name: t('setup.title'), exact: true }).waitFor();
        };
        await serviceSignIn(page, config);
        await signInWithPassword();
        await screenshot(page, `${language}-setup-offer`);
        await page.getByRole('button', { name: t('setup.decline', { service: `Bank ${language}` }) }).click();
        await page.waitForURL(`${serviceOrigin}/cb?**`);
        expect(new URL(page.url()).searchParams.get('error')).toBe('unmet_authentication_requirements');

        const signIn = await serviceSignIn(page, config);
        await signInWithPassword();
        await page.getByRole('button', { name: t('passkey.add') }).click();
        await page.locator('#recovery-codes').waitFor();
        await screenshot(page, `${language}-setup-offer-recovery-codes`);
        await page.getByRole('button', { name: t('recoveryCodes.continue') }).click();
        await allowIfAsked(page, t);
        const claims = (await signIn.tokens()).claims()!;
        expect(claims.amr).toEqual(['pwd', 'hwk', 'mfa']);
        // The level reached: an administrator's requirement is not a request of the service's own.
        expect(claims.acr).toBe(acrLevels.phishingResistant);
        expect(cspViolations).toEqual([]);
        await context.close();
      }
    },
  );

  it('lists each signed-in browser on the Security page; signing one out ends it and tells its services', { timeout: 90_000 }, async () => {
    const t = translator('en');
    const account = await createTestAccount(server.db);
    const { config, registered } = await registerService('Travel');
    const signInAt = async (page: Page) => {
      const signIn = await serviceSignIn(page, config);
      await page.getByLabel(t('form.email')).fill(account.email);
      await page.getByLabel(t('form.password')).fill(account.password);
      await page.getByRole('button', { name: t('login.submit'), exact: true }).click();
      await allowIfAsked(page, t);
      return (await signIn.tokens()).claims()!;
    };
    const laptop = await profile('en', 'desktop');
    const phone = await profile('en', 'phone');
    await signInAt(laptop.page);
    const phoneClaims = await signInAt(phone.page);

    await signInToAccountPages(laptop.page, t, account);
    await laptop.page.getByRole('heading', { name: t('security.sessions.heading') }).waitFor();
    const sessions = laptop.page.locator('.session');
    await expect.poll(() => sessions.count()).toBe(3);
    expect(await laptop.page.locator('.session', { hasText: t('security.sessions.thisBrowser') }).count()).toBe(1);
    await screenshot(laptop.page, 'en-security-sessions');
    const other = laptop.page.locator('.session', { hasText: 'Travel' }).filter({ hasNotText: t('security.sessions.thisBrowser') });
    const before = backchannel.tokens.length;
    await other.getByRole('button').click();
    await laptop.page.getByText(t('security.done.sessionEnded')).waitFor();

    // The phone's service is told which session ended; the phone must sign in again; the laptop need not.
    const token = await waitFor(() =>
      backchannel.tokens.slice(before).find((candidate) => decodeJwt(candidate)['sid'] === phoneClaims['sid']),
    );
    expect(decodeJwt(token)['aud']).toBe(registered.client.clientId);
    await serviceSignIn(phone.page, config);
    await phone.page.getByLabel(t('form.email')).waitFor();
    const again = await serviceSignIn(laptop.page, config);
    expect((await again.tokens()).claims()!.sub).toBe(phoneClaims.sub);

    // Everywhere else: the phone signs in again, then the laptop signs everything but itself out.
    await phone.page.getByLabel(t('form.email')).fill(account.email);
    await phone.page.getByLabel(t('form.password')).fill(account.password);
    await phone.page.getByRole('button', { name: t('login.submit'), exact: true }).click();
    await phone.page.waitForURL(`${serviceOrigin}/cb?**`);
    await laptop.page.goto(`${server.issuer}/account/security`);
    await laptop.page.getByRole('button', { name: t('security.sessions.endOthers') }).click();
    await laptop.page.getByText(t('security.done.otherSessionsEnded')).waitFor();
    await expect.poll(() => laptop.page.locator('.session').count()).toBe(2);
    await serviceSignIn(phone.page, config);
    await phone.page.getByLabel(t('form.email')).waitFor();
    await laptop.context.close();
    await phone.context.close();
  });

  it('has no serious or critical accessibility violations on the new pages, in either language', { timeout: 120_000 }, async () => {
    const problems: Record<string, string[]> = {};
    for (const language of ['en', 'ja'] as const) {
      const t = translator(language);
      const account = await createTestAccount(server.db, { locale: language });
      const { context, page } = await profile(language, 'phone', { scan: true, autofill: false });
      const scan = async (name: string) => {
        const found = await seriousViolations(page);
        if (found.length) problems[`${language} ${name}`] = found;
      };
      await signInToAccountPages(page, t, account);
      await page.getByRole('heading', { name: t('security.title'), exact: true }).waitFor();
      await scan('security');
      // Each scan waits for its page: axe run while the click's navigation is under way finds no document.
      await page.getByRole('link', { name: t('security.authenticator.setUp') }).click();
      await page.locator('#totp-secret').waitFor();
      await scan('authenticator setup');
      const secret = (await page.locator('#totp-secret').textContent())!.trim();
      await page.getByRole('button', { name: t('authenticator.submit') }).click();
      await page.locator('.error').first().waitFor();
      await scan('authenticator setup with an error');
      await page.getByLabel(t('authenticator.enterCode')).fill(totpCode(secret));
      await page.getByRole('button', { name: t('authenticator.submit') }).click();
      await page.locator('#recovery-codes').waitFor();
      await scan('recovery codes');
      await page.goto(`${server.issuer}/account/security`);
      await page.getByRole('button', { name: t('passkey.add') }).click();
      await page.getByText(t('security.done.passkeyAdded')).waitFor();
      await scan('security with factors');
      await page.getByRole('button', { name: t('account.signOut'), exact: true }).click();

      const { config } = await registerService(`Scan ${language}`, { requireAcr: acrLevels.phishingResistant });
      await serviceSignIn(page, config);
      await scan('sign-in with a passkey button');
      await page.getByLabel(t('form.email')).fill(account.email);
      await page.getByLabel(t('form.password')).fill(account.password);
      await page.getByRole('button', { name: t('login.submit'), exact: true }).click();
      await page.getByRole('heading', { name: t('secondStep.title'), exact: true }).waitFor();
      await scan('second step (passkey only)');

      const other = await createTestAccount(server.db, { locale: language });
      const plain = await registerService(`Scan 2fa ${language}`, { requireAcr: acrLevels.twoFactors });
      await context.clearCookies();
      await serviceSignIn(page, plain.config);
      await page.getByLabel(t('form.email')).fill(other.email);
      await page.getByLabel(t('form.password')).fill(other.password);
      await page.getByRole('button', { name: t('login.submit'), exact: true }).click();
      await page.getByRole('heading', { name: t('setup.title'), exact: true }).waitFor();
      await scan('factor setup offer');
      await page.goto(`${server.issuer}/account/sign-in/second-step`);
      await scan('expired sign-in');
      await context.close();
    }
    expect(problems).toEqual({});
  });
});
