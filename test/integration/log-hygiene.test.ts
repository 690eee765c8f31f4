import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import * as oidc from 'openid-client';
import { describe, expect, it } from 'vitest';
import { createApp } from '../../src/http/app.js';
import { createLogger } from '../../src/logger.js';
import { loadConfig } from '../../src/config.js';
import { createTestAccount, createTestClient } from '../helpers/fixtures.js';
import { discoverClient, startAuthorization, exchangeCode } from '../helpers/oidc-client.js';
import { testDatabase, testEnvironment } from '../helpers/server.js';
import { completeAuthorization, formActions, hiddenField, UserAgent } from '../helpers/user-agent.js';

describe('logs', () => {
  it('never contain passwords, client secrets, codes, tokens or cookies, even at debug level', async () => {
    let logged = '';
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        logged += chunk.toString();
        done();
      },
    });
    const http = createServer();
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    const issuer = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
    const db = testDatabase();
    // The test settings (high rate limits: the whole suite signs in from 127.0.0.1), at debug level.
    const config = loadConfig({
      ...testEnvironment,
      DATABASE_URL: 'postgres://unused@127.0.0.1/unused',
      ISSUER: issuer,
      LOG_LEVEL: 'debug',
    });
    const { app, provider, logoutDeliveries, eventDeliveries } = await createApp(config, db, createLogger({ logLevel: 'debug' }, sink));
    http.on('request', app.callback());
    try {
      const { clientMetadataValidator } = await import('../../src/oidc/provider.js');
      const account = await createTestAccount(db);
      const { client, clientSecret } = await createTestClient(db, clientMetadataValidator(provider), {
        redirectUris: ['http://127.0.0.1:9800/cb'],
      });
      const config = await discoverClient(issuer, client.clientId, clientSecret);
      const request = await startAuthorization(config, client.redirectUris[0]!, 'openid email');
      const agent = new UserAgent();

      const page = await agent.follow(request.url.href, client.redirectUris[0]!);
      if ('stoppedAt' in page) throw new Error('expected the login page');
      const login = issuer + formActions(page.body).find((a) => a.endsWith('/login'))!;
      await agent.request(login, {
        form: { _csrf: hiddenField(page.body, '_csrf'), email: account.email, password: 'a wrong password 123' },
      });
      const { callback } = await completeAuthorization(agent, request.url.href, client.redirectUris[0]!, { ...account, consent: 'allow' });
      const tokens = await exchangeCode(config, callback, request);
      const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
      await oidc.fetchUserInfo(config, refreshed.access_token, tokens.claims()!.sub);

      expect(logged).toContain('"msg":"request"'); // the sink did receive the logs
      const cookies = (await agent.jar.getCookies(issuer)).map((cookie) => cookie.value).filter((value) => value.length > 8);
      const secrets = {
        password: account.password,
        wrongPassword: 'a wrong password 123',
        clientSecret: clientSecret!,
        code: callback.searchParams.get('code')!,
        codeVerifier: request.verifier,
        accessToken: tokens.access_token,
        refreshToken: tokens.refresh_token!,
        idToken: tokens.id_token!,
        rotatedRefreshToken: refreshed.refresh_token!,
        ...Object.fromEntries(cookies.map((value, i) => [`cookie${i}`, value])),
      };
      for (const [name, value] of Object.entries(secrets)) expect(logged.includes(value), `${name} appears in the log`).toBe(false);
    } finally {
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
      await logoutDeliveries.stop();
      await eventDeliveries.stop();
      await db.close();
    }
  });
});
