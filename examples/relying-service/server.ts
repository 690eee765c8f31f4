/**
 * A minimal relying service: sign in with Group ID, show the consented claims, sign out
 * (RP-initiated), and honour back-channel logout. Plain node:http and openid-client.
 *
 *   npm run example            # registers itself with `idp clients add` on first run
 *
 * Env: ISSUER (http://localhost:3000), EXAMPLE_PORT (8080), CLIENT_ID / CLIENT_SECRET to
 * use an existing registration.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import * as oidc from 'openid-client';

const issuer = process.env['ISSUER'] ?? 'http://localhost:3000';
const port = Number(process.env['EXAMPLE_PORT'] ?? 8080);
const origin = `http://localhost:${port}`;
const registrationFile = new URL('./registration.json', import.meta.url);

/** Uses CLIENT_ID/CLIENT_SECRET, or registers this example once with the admin CLI. */
function registration(): { clientId: string; clientSecret: string } {
  if (process.env['CLIENT_ID'] && process.env['CLIENT_SECRET'])
    return { clientId: process.env['CLIENT_ID'], clientSecret: process.env['CLIENT_SECRET'] };
  if (existsSync(registrationFile)) return JSON.parse(readFileSync(registrationFile, 'utf8'));
  const output = execFileSync(
    'node',
    [
      'dist/cli/index.js',
      'clients',
      'add',
      '--name',
      'Example service',
      '--json',
      '--redirect-uri',
      `${origin}/callback`,
      '--post-logout-redirect-uri',
      `${origin}/`,
      '--backchannel-logout-uri',
      `${origin}/backchannel-logout`,
      '--scope',
      'openid profile email',
    ],
    { encoding: 'utf8' },
  );
  const { clientId, clientSecret } = JSON.parse(output) as { clientId: string; clientSecret: string };
  writeFileSync(registrationFile, JSON.stringify({ clientId, clientSecret }));
  return { clientId, clientSecret };
}

const { clientId, clientSecret } = registration();
const config = await oidc.discovery(new URL(issuer), clientId, clientSecret, oidc.ClientSecretBasic(clientSecret), {
  execute: issuer.startsWith('http://') ? [oidc.allowInsecureRequests] : [],
});
const jwks = createRemoteJWKSet(new URL(config.serverMetadata().jwks_uri!));

interface Session {
  claims?: Record<string, unknown>;
  idToken?: string;
  sid?: string;
  sub?: string;
  pending?: { verifier: string; state: string; nonce: string };
}
const sessions = new Map<string, Session>();

function sessionOf(req: IncomingMessage, res: ServerResponse): Session {
  const id = /(?:^|; )example_session=([\w-]+)/.exec(req.headers.cookie ?? '')?.[1];
  if (id && sessions.has(id)) return sessions.get(id)!;
  const fresh = randomBytes(16).toString('base64url');
  sessions.set(fresh, {});
  res.setHeader('set-cookie', `example_session=${fresh}; HttpOnly; SameSite=Lax; Path=/`);
  return sessions.get(fresh)!;
}

const escape = (value: unknown) => String(value).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const page = (res: ServerResponse, body: string) =>
  res.setHeader('content-type', 'text/html; charset=utf-8').end(`<!doctype html><title>Example service</title>${body}`);

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', origin);
  const session = sessionOf(req, res);

  if (url.pathname === '/login') {
    const pending = { verifier: oidc.randomPKCECodeVerifier(), state: oidc.randomState(), nonce: oidc.randomNonce() };
    session.pending = pending;
    const target = oidc.buildAuthorizationUrl(config, {
      redirect_uri: `${origin}/callback`,
      scope: 'openid profile email',
      state: pending.state,
      nonce: pending.nonce,
      code_challenge: await oidc.calculatePKCECodeChallenge(pending.verifier),
      code_challenge_method: 'S256',
    });
    res.writeHead(302, { location: target.href }).end();
    return;
  }
  if (url.pathname === '/callback' && session.pending) {
    const { verifier, state, nonce } = session.pending;
    delete session.pending;
    const tokens = await oidc.authorizationCodeGrant(config, url, {
      pkceCodeVerifier: verifier,
      expectedState: state,
      expectedNonce: nonce,
    });
    const idClaims = tokens.claims()!;
    session.claims = { ...(await oidc.fetchUserInfo(config, tokens.access_token, idClaims.sub)) };
    session.idToken = tokens.id_token;
    session.sid = idClaims['sid'] as string | undefined;
    session.sub = idClaims.sub;
    res.writeHead(302, { location: '/' }).end();
    return;
  }
  if (url.pathname === '/logout' && session.idToken) {
    const target = oidc.buildEndSessionUrl(config, { id_token_hint: session.idToken, post_logout_redirect_uri: `${origin}/` });
    Object.assign(session, { claims: undefined, idToken: undefined, sid: undefined, sub: undefined });
    res.writeHead(302, { location: target.href }).end();
    return;
  }
  if (url.pathname === '/backchannel-logout' && req.method === 'POST') {
    let body = '';
    for await (const chunk of req) body += chunk;
    const token = new URLSearchParams(body).get('logout_token') ?? '';
    try {
      const { payload } = await jwtVerify(token, jwks, { issuer: config.serverMetadata().issuer, audience: clientId, typ: 'logout+jwt' });
      const events = payload['events'] as Record<string, unknown> | undefined;
      if (!events?.['http://schemas.openid.net/event/backchannel-logout'] || 'nonce' in payload) throw new Error('not a logout token');
      for (const [id, candidate] of sessions) {
        if ((payload['sid'] && candidate.sid === payload['sid']) || (!payload['sid'] && candidate.sub === payload.sub)) sessions.delete(id);
      }
      console.info(`back-channel logout for sid=${String(payload['sid'])}`);
      res.writeHead(200, { 'cache-control': 'no-store' }).end();
    } catch (error) {
      res.writeHead(400).end((error as Error).message);
    }
    return;
  }
  if (session.claims) {
    const rows = Object.entries(session.claims)
      .map(([k, v]) => `<tr><th>${escape(k)}</th><td>${escape(v)}</td></tr>`)
      .join('');
    page(res, `<h1>Signed in</h1><table>${rows}</table><p><a href="/logout">Sign out</a></p>`);
    return;
  }
  page(res, `<h1>Example service</h1><p><a href="/login">Sign in with Group ID</a></p>`);
}

createServer((req, res) => {
  handle(req, res).catch((error: Error) => {
    console.error(error);
    res.writeHead(500).end('sign-in failed; see the example service log');
  });
}).listen(port, () => console.info(`example service on ${origin} (client_id ${clientId}); issuer ${issuer}`));
