import { randomInt } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RegisteredClient } from '../../src/clients/store.js';
import { createTestAccount, createTestClient } from '../helpers/fixtures.js';
import { rawRequest } from '../helpers/raw-http.js';
import { signInToAccountPages } from '../helpers/self-service.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { hiddenField, UserAgent } from '../helpers/user-agent.js';

/*
 * Security review, findings 7, 8 and 14: one spelling per path (limits and middleware key on
 * it), and every answer built for the issuer's host, whatever Host says.
 */

let server: TestServer;
let registered: RegisteredClient;
let port: number;

beforeAll(async () => {
  server = await startTestServer({ env: { TRUST_PROXY: 'true', TOKEN_FAILURES_PER_IP_PER_MINUTE: '3' } });
  port = (server.server.address() as { port: number }).port;
  registered = await createTestClient(server.db, server.validator, { redirectUris: ['http://127.0.0.1:9470/cb'] });
});
afterAll(async () => {
  await server?.close();
});

const randomIp = () => `10.${randomInt(256)}.${randomInt(256)}.${randomInt(1, 255)}`;

function failedTokenRequest(path: string, ip: string) {
  return fetch(`${server.issuer}${path}`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      'x-forwarded-for': ip,
      authorization: `Basic ${Buffer.from(`${registered.client.clientId}:wrong`).toString('base64')}`,
    },
    body: 'grant_type=authorization_code&code=guess&redirect_uri=http%3A%2F%2F127.0.0.1%3A9470%2Fcb&token=guess',
  });
}

describe('the token-endpoint throttle', () => {
  it('cannot be walked around through another spelling of the path: those are not answered at all', async () => {
    const ip = randomIp();
    for (const spelling of ['/TOKEN', '/Token', '/token/', '/token/introspection/', '/TOKEN/INTROSPECTION', '/token/Revocation']) {
      expect((await failedTokenRequest(spelling, ip)).status, spelling).toBe(404);
    }
    const statuses: number[] = [];
    for (let i = 0; i < 4; i += 1) statuses.push((await failedTokenRequest('/token', ip)).status);
    expect(statuses).toEqual([401, 401, 401, 429]);
    // Introspection and revocation share the limit: the IP is locked there too.
    expect((await failedTokenRequest('/token/introspection', ip)).status).toBe(429);
  });
});

describe('paths with another case or a trailing slash', () => {
  it('are 404 for a signed-in person too, never a 500 and never past the router middleware', async () => {
    const account = await createTestAccount(server.db);
    const agent = new UserAgent();
    const page = await signInToAccountPages(agent, server.issuer, account.email, account.password);
    const csrf = hiddenField(page.body, '_csrf');
    for (const path of [
      '/ACCOUNT',
      '/ACCOUNT/password',
      '/Account/data',
      '/account/',
      '/account/password/',
      '/Password/forgot',
      '/EMAIL/verify',
    ]) {
      expect((await agent.request(`${server.issuer}${path}`)).status, `GET ${path}`).toBe(404);
    }
    for (const path of ['/ACCOUNT/delete', '/account/delete/', '/ACCOUNT/email', '/Account/sign-out']) {
      const answer = await agent.request(`${server.issuer}${path}`, { form: { _csrf: csrf, password: account.password, confirm: 'yes' } });
      expect(answer.status, `POST ${path}`).toBe(404);
    }
    // Nothing happened: the account is there and still signed in.
    expect((await agent.request(`${server.issuer}/account`)).status).toBe(200);
  });

  it('are 404 without a session as well (they used to skip the sign-in check and answer 500)', async () => {
    for (const path of ['/ACCOUNT/password', '/ACCOUNT/services', '/INTERACTION/x', '/Interaction/x/login']) {
      expect((await fetch(`${server.issuer}${path}`, { headers: { accept: 'text/html' } })).status, path).toBe(404);
    }
  });
});

describe('the Host header', () => {
  const discoveryWith = async (headers: [string, string][]) => {
    const response = await rawRequest(port, { method: 'GET', target: '/.well-known/openid-configuration', headers });
    return { status: response.status, body: JSON.parse(response.body) as Record<string, string> };
  };

  it('never reaches the endpoint URLs in discovery, directly or as X-Forwarded-Host', async () => {
    for (const headers of [
      [['Host', 'evil.example']],
      [['Host', 'evil.example:8443']],
      [
        ['Host', `127.0.0.1:${port}`],
        ['X-Forwarded-Host', 'evil.example'],
      ],
    ] as [string, string][][]) {
      const { status, body } = await discoveryWith(headers);
      expect(status).toBe(200);
      expect(body['issuer']).toBe(server.issuer);
      for (const key of ['authorization_endpoint', 'token_endpoint', 'jwks_uri', 'userinfo_endpoint', 'end_session_endpoint']) {
        expect(body[key], `${key} with ${JSON.stringify(headers)}`).toMatch(new RegExp(`^${server.issuer}/`));
      }
    }
  });

  it("never reaches the logout form's action", async () => {
    const response = await rawRequest(port, {
      method: 'GET',
      target: `/session/end?client_id=${encodeURIComponent(registered.client.clientId)}`,
      headers: [
        ['Host', 'evil.example'],
        ['Accept', 'text/html'],
      ],
    });
    expect(response.status).toBe(200);
    expect(response.body).not.toContain('evil.example');
    expect(response.body).toContain(`action="${server.issuer}/session/end/confirm"`);
  });
});

describe('discovery and the JWKS', () => {
  it('may be cached briefly', async () => {
    for (const path of ['/.well-known/openid-configuration', '/.well-known/oauth-authorization-server', '/jwks']) {
      const response = await fetch(`${server.issuer}${path}`);
      expect(response.status, path).toBe(200);
      expect(response.headers.get('cache-control'), path).toBe('public, max-age=300');
    }
  });
});
