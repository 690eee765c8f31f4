import { createHash, randomBytes } from 'node:crypto';
import type { FixtureAccount, FixtureClient } from './fixtures.js';
import type { RequestOptions, SoftwareAuthenticator } from '../../test/helpers/software-authenticator.js';
import { basicAuth, CookieJar, expectStatus, type Http, type Reply, UnexpectedReply } from './http.js';

/** How a client authenticates at the token endpoint: its secret (Basic), or a public client's id in the form. */
function clientAuthentication(client: FixtureClient): { headers: Record<string, string>; form: Record<string, string> } {
  return client.secret ? { headers: basicAuth(client.id, client.secret), form: {} } : { headers: {}, form: { client_id: client.id } };
}

/** What a relying party holds after a code exchange. */
export interface Tokens {
  accessToken: string;
  refreshToken: string | undefined;
}

interface PendingCode {
  code: string;
  verifier: string;
}

function authorizationPath(client: FixtureClient, scope: string): { path: string; verifier: string } {
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  const params = new URLSearchParams({
    client_id: client.id,
    response_type: 'code',
    redirect_uri: client.redirectUri,
    scope,
    state: randomBytes(8).toString('base64url'),
    nonce: randomBytes(8).toString('base64url'),
    code_challenge: challenge,
    code_challenge_method: 'S256',
  });
  return { path: `/auth?${params}`, verifier };
}

function codeFrom(client: FixtureClient, location: string | undefined): string {
  if (!location?.startsWith(client.redirectUri)) throw new Error(`expected a redirect to the client, got ${location}`);
  const code = new URL(location).searchParams.get('code');
  if (!code) throw new Error(`no code in ${location}`);
  return code;
}

const csrfField = /name="_csrf" value="([^"]+)"/;

/**
 * authorize → (login page → credentials → resume)? → (consent page → allow → resume)? → code.
 * Works on both servers: the same routes, and `_csrf` is sent when the page has one.
 */
export async function authorize(
  http: Http,
  jar: CookieJar,
  client: FixtureClient,
  account: FixtureAccount,
  scope: string,
): Promise<PendingCode> {
  const { path, verifier } = authorizationPath(client, scope);
  let reply = expectStatus('authorize', await http.request('GET', path, { jar }), 302, 303);
  for (let step = 0; step < 4; step += 1) {
    if (reply.location?.startsWith(client.redirectUri)) return { code: codeFrom(client, reply.location), verifier };
    const interaction = reply.location!;
    const page = expectStatus('interaction page', await http.request('GET', interaction, { jar }), 200);
    const csrf = csrfField.exec(page.body)?.[1];
    const form: Record<string, string> = csrf ? { _csrf: csrf } : {};
    const isLogin = page.body.includes(`${new URL(interaction).pathname}/login"`);
    if (isLogin) Object.assign(form, { email: account.email, password: account.password });
    const submitted = expectStatus(
      isLogin ? 'login' : 'consent',
      await http.request('POST', `${interaction}/${isLogin ? 'login' : 'consent'}`, { jar, form }),
      302,
      303,
    );
    reply = expectStatus('resume', await http.request('GET', submitted.location!, { jar }), 302, 303);
  }
  throw new UnexpectedReply('authorize: too many steps', reply);
}

export async function exchangeCode(http: Http, client: FixtureClient, pending: PendingCode): Promise<Tokens> {
  const auth = clientAuthentication(client);
  const reply = expectStatus(
    'code exchange',
    await http.request('POST', '/token', {
      headers: auth.headers,
      form: {
        ...auth.form,
        grant_type: 'authorization_code',
        code: pending.code,
        redirect_uri: client.redirectUri,
        code_verifier: pending.verifier,
      },
    }),
    200,
  );
  const body = JSON.parse(reply.body) as { access_token: string; refresh_token?: string; id_token?: string };
  if (!body.id_token) throw new Error('no id_token');
  return { accessToken: body.access_token, refreshToken: body.refresh_token };
}

/** The SSO flow for a browser that already has a session and consent: authorize → code → token. */
export async function ssoFlow(http: Http, jar: CookieJar, client: FixtureClient, scope: string): Promise<Tokens> {
  const { path, verifier } = authorizationPath(client, scope);
  const reply = expectStatus('authorize (SSO)', await http.request('GET', path, { jar }), 302, 303);
  return exchangeCode(http, client, { code: codeFrom(client, reply.location), verifier });
}

/** A refresh: a public client's token must rotate; a confidential client's is kept (or rotated near its expiry). */
export async function refresh(http: Http, client: FixtureClient, refreshToken: string): Promise<Tokens> {
  const auth = clientAuthentication(client);
  const reply = expectStatus(
    'refresh',
    await http.request('POST', '/token', {
      headers: auth.headers,
      form: { ...auth.form, grant_type: 'refresh_token', refresh_token: refreshToken },
    }),
    200,
  );
  const body = JSON.parse(reply.body) as { access_token: string; refresh_token?: string };
  if (!body.refresh_token) throw new Error('no refresh token in the answer');
  if (!client.secret && body.refresh_token === refreshToken) throw new Error("a public client's refresh token was not rotated");
  return { accessToken: body.access_token, refreshToken: body.refresh_token };
}

export async function clientCredentials(http: Http, client: FixtureClient): Promise<void> {
  const reply = expectStatus(
    'client_credentials',
    await http.request('POST', '/token', { headers: basicAuth(client.id, client.secret!), form: { grant_type: 'client_credentials' } }),
    200,
  );
  if (!(JSON.parse(reply.body) as { access_token?: string }).access_token) throw new Error('no access_token');
}

export async function userinfo(http: Http, accessToken: string): Promise<void> {
  const reply = expectStatus('userinfo', await http.request('GET', '/me', { headers: { authorization: `Bearer ${accessToken}` } }), 200);
  if (!(JSON.parse(reply.body) as { sub?: string }).sub) throw new Error('no sub');
}

export async function introspect(http: Http, client: FixtureClient, token: string): Promise<void> {
  const reply = expectStatus(
    'introspection',
    await http.request('POST', '/token/introspection', { headers: basicAuth(client.id, client.secret!), form: { token } }),
    200,
  );
  if ((JSON.parse(reply.body) as { active?: boolean }).active !== true) throw new Error('token not active');
}

export async function getJson(http: Http, path: string): Promise<void> {
  JSON.parse(expectStatus(path, await http.request('GET', path), 200).body);
}

export { CookieJar };

const unescapeAttribute = (text: string) =>
  text
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');

/** The WebAuthn request options a sign-in page's passkey form carries. */
function passkeyRequestOptions(body: string): RequestOptions {
  const match = /data-passkey="authenticate" data-options="([^"]*)"/.exec(body);
  if (!match) throw new Error('no passkey form on the page');
  return JSON.parse(unescapeAttribute(match[1]!)) as RequestOptions;
}

/** Follows the resumption after an interaction step to the client's redirect (a first-party client: no consent). */
async function resumeToCode(http: Http, jar: CookieJar, client: FixtureClient, step: string, submitted: Reply): Promise<string> {
  expectStatus(step, submitted, 303);
  const resumed = expectStatus('resume', await http.request('GET', submitted.location!, { jar }), 302, 303);
  return codeFrom(client, resumed.location);
}

/** A first-party sign-in with password and then an authenticator-app code: login page → password → second step → code. */
export async function secondStepSignIn(
  http: Http,
  jar: CookieJar,
  client: FixtureClient,
  account: FixtureAccount,
  code: string,
  scope: string,
): Promise<string> {
  const { path } = authorizationPath(client, scope);
  const start = expectStatus('authorize', await http.request('GET', path, { jar }), 302, 303);
  const login = expectStatus('login page', await http.request('GET', start.location!, { jar }), 200);
  const csrf = csrfField.exec(login.body)![1]!;
  const interaction = new URL(start.location!).pathname;
  const afterPassword = expectStatus(
    'password',
    await http.request('POST', `${interaction}/login`, { jar, form: { _csrf: csrf, email: account.email, password: account.password } }),
    303,
  );
  if (!afterPassword.location?.endsWith('/second-step')) throw new UnexpectedReply('expected the second step', afterPassword);
  const secondStep = expectStatus('second-step page', await http.request('GET', afterPassword.location, { jar }), 200);
  const submitted = await http.request('POST', `${interaction}/second-step`, {
    jar,
    form: { _csrf: csrfField.exec(secondStep.body)![1]!, code },
  });
  return resumeToCode(http, jar, client, 'second step', submitted);
}

/** A first-party sign-in with a passkey alone: login page (with its challenge) → assertion → code. */
export async function passkeySignIn(
  http: Http,
  jar: CookieJar,
  client: FixtureClient,
  authenticator: SoftwareAuthenticator,
  scope: string,
): Promise<string> {
  const { path } = authorizationPath(client, scope);
  const start = expectStatus('authorize', await http.request('GET', path, { jar }), 302, 303);
  const login = expectStatus('login page', await http.request('GET', start.location!, { jar }), 200);
  const credential = authenticator.authenticate(passkeyRequestOptions(login.body));
  const submitted = await http.request('POST', `${new URL(start.location!).pathname}/passkey`, {
    jar,
    form: { _csrf: csrfField.exec(login.body)![1]!, credential: JSON.stringify(credential) },
  });
  return resumeToCode(http, jar, client, 'passkey', submitted);
}
