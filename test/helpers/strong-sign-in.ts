import * as oidc from 'openid-client';
import { Secret, TOTP } from 'otpauth';
import type { RegisteredClient } from '../../src/clients/store.js';
import type { TestServer } from './server.js';
import { discoverClient } from './oidc-client.js';
import { authorizationUrl } from './service-sign-in.js';
import type { CreationOptions, RequestOptions, SoftwareAuthenticator } from './software-authenticator.js';
import { formActions, hiddenField, type PageResponse, type UserAgent } from './user-agent.js';

/** What an HTML attribute or text held before Eta escaped it. */
export function unescapeHtml(text: string): string {
  return text
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}

/** The WebAuthn options a page's passkey form carries (data-options), for the form of this kind. */
export function passkeyOptionsIn(html: string, kind: 'register'): CreationOptions & { excludeCredentials?: { id: string }[] };
export function passkeyOptionsIn(html: string, kind: 'authenticate'): RequestOptions;
export function passkeyOptionsIn(html: string, kind: 'register' | 'authenticate'): unknown {
  const match = new RegExp(`data-passkey="${kind}" data-options="([^"]*)"`).exec(html);
  if (!match) throw new Error(`no ${kind} passkey form in page`);
  return JSON.parse(unescapeHtml(match[1]!));
}

/** The action of the passkey form of this kind. */
export function passkeyActionIn(html: string, kind: 'register' | 'authenticate'): string {
  const match = new RegExp(`<form method="post" action="([^"]+)" class="passkey-form" data-passkey="${kind}"`).exec(html);
  if (!match) throw new Error(`no ${kind} passkey form in page`);
  return unescapeHtml(match[1]!);
}

/** The Base32 secret the authenticator-app setup shows in #totp-secret. */
export function totpSecretIn(html: string): string {
  const match = /<code id="totp-secret" class="secret">([A-Z2-7]+)<\/code>/.exec(html);
  if (!match) throw new Error('no #totp-secret in page');
  return match[1]!;
}

/** The code an authenticator app shows for `secret`, `steps` time steps from now. */
export function totpCode(secret: string, steps = 0): string {
  return TOTP.generate({ secret: Secret.fromBase32(secret), timestamp: Date.now() + steps * 30_000 });
}

/** The code of one time step (a 30-second period counted from the epoch), whatever the time now. */
export function totpCodeOfStep(secret: string, step: number): string {
  return TOTP.generate({ secret: Secret.fromBase32(secret), timestamp: step * 30_000 });
}

/** The codes of #recovery-codes, one per <li>. */
export function recoveryCodesIn(html: string): string[] {
  const list = /<ul id="recovery-codes"[^>]*>([\s\S]*?)<\/ul>/.exec(html);
  if (!list) throw new Error('no #recovery-codes in page');
  return [...list[1]!.matchAll(/<li><code>([^<]+)<\/code><\/li>/g)].map((match) => match[1]!);
}

/** Posts a form of `page` with its CSRF token (the action as the page names it). */
export function submit(agent: UserAgent, server: TestServer, page: PageResponse, action: string, fields: Record<string, string> = {}) {
  return agent.request(new URL(unescapeHtml(action), server.issuer).href, { form: { _csrf: hiddenField(page.body, '_csrf'), ...fields } });
}

/**
 * Moves an authenticator app's last used step ten steps (five minutes) back, as if it had been
 * set up a while ago: the code that confirmed the setup spent the current step.
 */
export async function ageAuthenticatorApp(server: TestServer, accountId: string): Promise<void> {
  await server.db.query('UPDATE totp_factors SET last_used_step = last_used_step - 10 WHERE account_id = $1', [accountId]);
}

/** Opens the Security page's authenticator setup, confirms it with a current code, and returns the secret and the page after. */
export async function setUpAuthenticatorApp(agent: UserAgent, server: TestServer) {
  const setup = await agent.request(`${server.issuer}/account/security/authenticator`);
  const secret = totpSecretIn(setup.body);
  const after = await submit(agent, server, setup, '/account/security/authenticator', { code: totpCode(secret) });
  return { secret, after };
}

/** Adds a passkey on the Security page with the software authenticator. */
export async function addPasskeyOnSecurityPage(
  agent: UserAgent,
  server: TestServer,
  authenticator: SoftwareAuthenticator,
  name = 'Test key',
) {
  const page = await agent.request(`${server.issuer}/account/security`);
  const credential = authenticator.register(passkeyOptionsIn(page.body, 'register'));
  return submit(agent, server, page, '/account/security/passkeys', { credential: JSON.stringify(credential), name });
}

/** What a service sign-in may need at each step. */
export interface Answers {
  email?: string;
  password?: string;
  /** For the second step: an authenticator-app secret, a recovery code, or a passkey. */
  totpSecret?: string;
  /** Which time step's code to give (default: the current one). */
  totpStep?: number;
  recoveryCode?: string;
  passkey?: SoftwareAuthenticator;
  /** Sign in with the passkey alone at the first step. */
  passkeyFirst?: boolean;
}

/**
 * Drives a service sign-in through the hosted pages with whatever each page asks for, until
 * the service's redirect URI is reached (or a page nothing in `answers` can answer: then that
 * page comes back). Returns the pages seen by name.
 */
export async function signInAtService(
  agent: UserAgent,
  server: TestServer,
  registered: RegisteredClient,
  answers: Answers,
  params: Record<string, string> = {},
): Promise<{ callback?: URL; page?: PageResponse; pages: string[] }> {
  const redirectUri = registered.client.redirectUris[0]!;
  const pages: string[] = [];
  let triedPasskey = false;
  let next = await agent.follow(authorizationUrl(server, registered, params), redirectUri);
  for (let step = 0; step < 8; step += 1) {
    if ('stoppedAt' in next) return { callback: new URL(next.stoppedAt), pages };
    const page = next;
    if (page.status >= 400) return { page, pages };
    const actions = formActions(page.body).map(unescapeHtml);
    const go = (action: string, fields: Record<string, string>) =>
      agent.follow(new URL(action, server.issuer).href, redirectUri, { form: { _csrf: hiddenField(page.body, '_csrf'), ...fields } });
    const login = actions.find((action) => action.endsWith('/login'));
    const secondStep = actions.find((action) => action.endsWith('/second-step'));
    const consent = actions.find((action) => action.endsWith('/consent'));
    if (login && answers.passkeyFirst && answers.passkey && !triedPasskey) {
      pages.push('login');
      triedPasskey = true;
      const credential = answers.passkey.authenticate(passkeyOptionsIn(page.body, 'authenticate'));
      next = await go(passkeyActionIn(page.body, 'authenticate'), { credential: JSON.stringify(credential) });
    } else if (login && !triedPasskey && answers.email && answers.password !== undefined) {
      pages.push('login');
      next = await go(login, { email: answers.email, password: answers.password });
    } else if (secondStep && answers.totpSecret && page.body.includes('name="code"')) {
      pages.push('second-step');
      next = await go(secondStep, { code: totpCode(answers.totpSecret, answers.totpStep) });
    } else if (secondStep && answers.recoveryCode && page.body.includes('name="recovery_code"')) {
      pages.push('second-step');
      next = await go(secondStep, { recovery_code: answers.recoveryCode });
    } else if (secondStep && answers.passkey && page.body.includes('data-passkey="authenticate"')) {
      pages.push('second-step');
      const credential = answers.passkey.authenticate(passkeyOptionsIn(page.body, 'authenticate'));
      next = await go(secondStep, { credential: JSON.stringify(credential) });
    } else if (consent) {
      pages.push('consent');
      next = await go(consent, {});
    } else {
      return { page, pages };
    }
  }
  throw new Error('sign-in did not finish');
}

/** The PKCE verifier of authorizationUrl's fixed challenge (RFC 7636 appendix B). */
const verifier = 'dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk';

/** Redeems the code of a callback as the service does (openid-client) and returns the ID token's claims. */
export async function idTokenClaimsOf(server: TestServer, registered: RegisteredClient, callback: URL): Promise<oidc.IDToken> {
  const config = await discoverClient(server.issuer, registered.client.clientId, registered.clientSecret);
  const tokens = await oidc.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: oidc.skipStateCheck });
  return tokens.claims()!;
}
