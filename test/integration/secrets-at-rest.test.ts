import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createTestAccount, createTestClient } from '../helpers/fixtures.js';
import { discoverClient, exchangeCode, startAuthorization } from '../helpers/oidc-client.js';
import { RecordingAgent } from '../helpers/recording-agent.js';
import { signInToAccountPages } from '../helpers/self-service.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { dumpEveryTable } from '../helpers/service-sign-in.js';
import { completeAuthorization } from '../helpers/user-agent.js';

/*
 * Security review, finding 5: a database dump must yield no code, token or cookie value
 * that a browser or a service could present.
 */

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server?.close();
});

describe('what a database dump yields', () => {
  it('none of the code, tokens or cookie values the browser and the service received', async () => {
    const account = await createTestAccount(server.db);
    const registered = await createTestClient(server.db, server.validator, { redirectUris: ['http://127.0.0.1:9460/cb'] });
    const config = await discoverClient(server.issuer, registered.client.clientId, registered.clientSecret);
    const browser = new RecordingAgent();
    const request = await startAuthorization(config, registered.client.redirectUris[0]!, 'openid profile email offline_access');
    const { callback } = await completeAuthorization(browser, `${request.url.href}&prompt=consent`, registered.client.redirectUris[0]!, {
      ...account,
      consent: 'allow',
    });
    const code = callback.searchParams.get('code')!;
    const tokens = await exchangeCode(config, callback, request);
    const rotated = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
    await signInToAccountPages(browser, server.issuer, account.email, account.password);

    const cookieValues = browser.responses
      .flatMap((response) => response.headers.getSetCookie())
      .map((cookie) => decodeURIComponent(cookie.split(';')[0]!.split('=').slice(1).join('=')))
      .filter((value) => value.length >= 16);
    const secrets = {
      code,
      accessToken: tokens.access_token,
      refreshToken: tokens.refresh_token!,
      idToken: tokens.id_token!,
      rotatedAccessToken: rotated.access_token,
      rotatedRefreshToken: rotated.refresh_token!,
      ...Object.fromEntries(cookieValues.map((value, i) => [`cookie ${i}`, value])),
    };
    // The session, the interactions and the account page each set one: the flow really ran.
    expect(cookieValues.length).toBeGreaterThanOrEqual(4);

    const dump = await dumpEveryTable(server.db);
    expect(dump).toContain(account.id); // the dump is real: the account is in it
    for (const [what, value] of Object.entries(secrets)) expect(dump.includes(value), `${what} is in the dump`).toBe(false);
  });
});

describe('start-up with an https issuer', () => {
  const run = promisify(execFile);
  const serverScript = fileURLToPath(new URL('../../dist/server.js', import.meta.url));

  it('refuses cookie and key-encryption keys kept in the database, naming what to set', async () => {
    const failure = await run(process.execPath, [serverScript], {
      env: { PATH: process.env['PATH'] ?? '', DATABASE_URL: inject('databaseUrl'), ISSUER: 'https://id.example.test', PORT: '0' },
      timeout: 20_000,
    }).then(
      () => undefined,
      (error: { code: number; stderr: string }) => error,
    );
    expect(failure?.code).toBe(2);
    expect(failure?.stderr).toMatch(/COOKIE_KEYS and KEY_ENCRYPTION_KEY must come from the environment/);
  });
});
