import * as oidc from 'openid-client';
import type { Database } from '../../src/db/index.js';
import type { ClientRegistration, RegisteredClient } from '../../src/clients/store.js';
import { createTestClient } from './fixtures.js';
import { discoverClient, exchangeCode, startAuthorization } from './oidc-client.js';
import type { TestServer } from './server.js';
import { completeAuthorization, hiddenField, type PageResponse, type UserAgent } from './user-agent.js';

export interface OutboxMail {
  purpose: string;
  language: string;
  recipient: string;
  subject: string;
  body: string;
  accountId: string | null;
}

/** The messages written to the outbox for an address (no SMTP server in tests), oldest first. */
export async function outboxFor(db: Database, recipient: string, purpose?: string): Promise<OutboxMail[]> {
  const { rows } = await db.query<{
    purpose: string;
    language: string;
    recipient: string;
    subject: string;
    body: string;
    account_id: string | null;
  }>(
    `SELECT purpose, language, recipient, subject, body, account_id FROM outbox
     WHERE lower(recipient) = lower($1) AND ($2::text IS NULL OR purpose = $2) ORDER BY id`,
    [recipient, purpose ?? null],
  );
  return rows.map((row) => ({ ...row, accountId: row.account_id }));
}

/**
 * The newest message of a purpose to an address; fails the test when none arrives. Some mail
 * is written just after the page answered (password-reset requests), so this waits a little.
 */
export async function latestMail(db: Database, recipient: string, purpose: string): Promise<OutboxMail> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const mail = (await outboxFor(db, recipient, purpose)).at(-1);
    if (mail) return mail;
    if (Date.now() > deadline) throw new Error(`no ${purpose} mail to ${recipient}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** The link a message carries. */
export function linkIn(body: string): string {
  const match = /https?:\/\/\S+/.exec(body);
  if (!match) throw new Error(`no link in mail: ${body}`);
  return match[0];
}

/** Signs in to the account pages with the login form, as a person without JavaScript would. */
export async function signInToAccountPages(agent: UserAgent, issuer: string, email: string, password: string): Promise<PageResponse> {
  const form = await agent.request(`${issuer}/account/sign-in`);
  const response = await agent.request(`${issuer}/account/sign-in`, {
    form: { _csrf: hiddenField(form.body, '_csrf'), email, password, next: '/account' },
  });
  if (response.status !== 303) throw new Error(`account sign-in failed (${response.status}): ${response.body.slice(0, 300)}`);
  return agent.request(response.location!);
}

/** Posts a form found on an account page (with that page's CSRF token). */
export async function postForm(agent: UserAgent, issuer: string, page: PageResponse, action: string, fields: Record<string, string> = {}) {
  return agent.request(`${issuer}${action}`, { form: { _csrf: hiddenField(page.body, '_csrf'), ...fields } });
}

export interface ConnectedService {
  registered: RegisteredClient;
  config: oidc.Configuration;
  tokens: oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers;
  pages: string[];
}

/**
 * Registers a service (optionally with a back-channel logout endpoint) and signs the agent in
 * to it through the hosted pages, consenting, then redeems the code: afterwards the account
 * has a session, a grant, an access token and a refresh token for the service.
 */
export async function connectService(
  server: TestServer,
  agent: UserAgent,
  person: { email: string; password: string; registerName?: string },
  options: { port: number; backchannelLogoutUri?: string; scope?: string; name?: string; client?: Partial<ClientRegistration> },
): Promise<ConnectedService> {
  const registered = await createTestClient(server.db, server.validator, {
    ...options.client,
    ...(options.name ? { name: options.name } : {}),
    redirectUris: [`http://127.0.0.1:${options.port}/cb`],
    postLogoutRedirectUris: [`http://127.0.0.1:${options.port}/bye`],
    ...(options.backchannelLogoutUri ? { backchannelLogoutUri: options.backchannelLogoutUri } : {}),
  });
  const config = await discoverClient(server.issuer, registered.client.clientId, registered.clientSecret);
  const redirectUri = registered.client.redirectUris[0]!;
  const request = await startAuthorization(config, redirectUri, options.scope ?? 'openid profile email offline_access');
  const { callback, pages } = await completeAuthorization(agent, `${request.url.href}&prompt=consent`, redirectUri, {
    ...person,
    consent: 'allow',
  });
  const tokens = await exchangeCode(config, callback, request);
  return { registered, config, tokens, pages };
}

/** How many protocol rows of each model the account still has. */
export async function artefactCounts(db: Database, accountId: string): Promise<Record<string, number>> {
  const { rows } = await db.query<{ model: string; count: string }>(
    `SELECT model, count(*) FROM oidc_payloads WHERE account_id = $1 AND (expires_at IS NULL OR expires_at > now()) GROUP BY model`,
    [accountId],
  );
  return Object.fromEntries(rows.map((row) => [row.model, Number(row.count)]));
}
