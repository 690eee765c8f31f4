import { randomInt } from 'node:crypto';
import type { RegisteredClient } from '../../src/clients/store.js';
import type { Database } from '../../src/db/index.js';
import type { TestServer } from './server.js';
import { formActions, hiddenField, UserAgent, type PageResponse } from './user-agent.js';

/**
 * A client address of the test's own, to send as the X-Forwarded-For an appending proxy adds
 * (on servers started with TRUST_PROXY=true): limits keyed on it are then the test's alone.
 */
export const randomIp = () => `10.${randomInt(256)}.${randomInt(256)}.${randomInt(1, 255)}`;

/** A well-formed authorization request of a code-flow service (PKCE S256). */
export function authorizationUrl(server: TestServer, registered: RegisteredClient, extra: Record<string, string> = {}): string {
  const params = new URLSearchParams({
    client_id: registered.client.clientId,
    redirect_uri: registered.client.redirectUris[0]!,
    response_type: 'code',
    scope: 'openid',
    code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
    code_challenge_method: 'S256',
    ...extra,
  });
  return `${server.issuer}/auth?${params}`;
}

export interface ServiceLogin {
  agent: UserAgent;
  page: PageResponse;
  /** The sign-in form's action and the registration page of the same interaction. */
  loginUrl: string;
  registerUrl: string;
  /** Submits the sign-in form (as often as asked, concurrently too). */
  submit(email: string, password: string): Promise<PageResponse>;
}

/**
 * A fresh browser at the sign-in page a service sent it to. `forwardedFor` is sent with every
 * request as X-Forwarded-For (a function, for a new value each time).
 */
export async function openServiceLogin(
  server: TestServer,
  registered: RegisteredClient,
  options: { forwardedFor?: string | (() => string) } = {},
): Promise<ServiceLogin> {
  const agent = new UserAgent();
  const forwardedFor = options.forwardedFor;
  const headers = (): Record<string, string> =>
    forwardedFor === undefined ? {} : { 'x-forwarded-for': typeof forwardedFor === 'string' ? forwardedFor : forwardedFor() };
  const page = await agent.follow(authorizationUrl(server, registered), registered.client.redirectUris[0]!, { headers: headers() });
  if ('stoppedAt' in page) throw new Error(`unexpected redirect to ${page.stoppedAt}`);
  const action = formActions(page.body).find((a) => a.endsWith('/login'));
  if (!action) throw new Error(`no sign-in form (status ${page.status})`);
  const csrf = hiddenField(page.body, '_csrf');
  return {
    agent,
    page,
    loginUrl: server.issuer + action,
    registerUrl: server.issuer + action.replace(/\/login$/, '/register'),
    submit: (email, password) => agent.request(server.issuer + action, { form: { _csrf: csrf, email, password }, headers: headers() }),
  };
}

/** Every row of every table, as text: what a database dump would hold. */
export async function dumpEveryTable(db: Database): Promise<string> {
  const { rows: tables } = await db.query<{ table_name: string }>(
    `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'`,
  );
  const parts: string[] = [];
  for (const { table_name: table } of tables) {
    const { rows } = await db.query<{ row: string }>(`SELECT t::text AS row FROM "${table}" t`);
    parts.push(...rows.map((row) => row.row));
  }
  return parts.join('\n');
}
