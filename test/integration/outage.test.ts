import request from 'supertest';
import { inject, afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestAccount, createTestClient } from '../helpers/fixtures.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';
import { completeAuthorization, UserAgent } from '../helpers/user-agent.js';

let proxy: TcpProxy;
let server: TestServer;

beforeAll(async () => {
  const direct = new URL(inject('databaseUrl'));
  proxy = new TcpProxy(Number(direct.port || 5432));
  await proxy.start();
  const viaProxy = new URL(direct);
  viaProxy.port = String(proxy.port);
  server = await startTestServer({ env: { DATABASE_URL: viaProxy.toString() } });
});
afterAll(async () => {
  await server?.close();
  await proxy?.cut();
});

async function waitFor(check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error('condition not met in time');
}

describe('database outage', () => {
  it('answers 503 while the database is away and recovers without a restart', async () => {
    const registered = await createTestClient(server.db, server.validator, { redirectUris: ['http://127.0.0.1:9200/cb'] });
    const account = await createTestAccount(server.db);
    const http = request(server.server);
    expect((await http.get('/readyz')).status).toBe(200);

    await proxy.cut();
    const ready = await http.get('/readyz');
    expect(ready.status).toBe(503);
    expect(ready.body).toMatchObject({ status: 'unavailable' });
    expect((await http.get('/healthz')).status).toBe(200);
    const authorize = await http
      .get('/auth')
      .query({
        client_id: registered.client.clientId,
        response_type: 'code',
        scope: 'openid',
        redirect_uri: registered.client.redirectUris[0]!,
      })
      .set('accept', 'text/html');
    expect(authorize.status).toBe(503);
    expect(authorize.text).not.toMatch(/at \w+ \(.*:\d+:\d+\)/);

    await proxy.start();
    await waitFor(async () => (await http.get('/readyz')).status === 200);

    const params = new URLSearchParams({
      client_id: registered.client.clientId,
      response_type: 'code',
      scope: 'openid',
      redirect_uri: registered.client.redirectUris[0]!,
      code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
      code_challenge_method: 'S256',
    });
    const { callback } = await completeAuthorization(
      new UserAgent(),
      `${server.issuer}/auth?${params}`,
      registered.client.redirectUris[0]!,
      {
        email: account.email,
        password: account.password,
        consent: 'allow',
      },
    );
    expect(callback.searchParams.get('code')).toEqual(expect.any(String));
  });
});
