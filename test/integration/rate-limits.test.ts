import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestAccount, createTestClient, uniqueEmail } from '../helpers/fixtures.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { openServiceLogin, randomIp } from '../helpers/service-sign-in.js';
import { hiddenField, UserAgent } from '../helpers/user-agent.js';
import type { RegisteredClient } from '../../src/clients/store.js';

let server: TestServer;
let registered: RegisteredClient;

beforeAll(async () => {
  server = await startTestServer({
    env: {
      TRUST_PROXY: 'true',
      LOGIN_MAX_FAILURES_PER_ACCOUNT: '4',
      LOGIN_MAX_FAILURES_PER_IP: '6',
      LOGIN_LOCK_SECONDS: '600',
      REGISTRATIONS_PER_IP_PER_HOUR: '2',
      TOKEN_FAILURES_PER_IP_PER_MINUTE: '5',
      PASSWORD_RESETS_PER_IP_PER_HOUR: '2',
    },
  });
  registered = await createTestClient(server.db, server.validator, { redirectUris: ['http://127.0.0.1:9400/cb'] });
});
afterAll(async () => {
  await server?.close();
});

const freshIp = randomIp;

async function loginPage(ip: string) {
  const { agent, loginUrl, submit } = await openServiceLogin(server, registered, { forwardedFor: ip });
  return { agent, action: loginUrl.slice(server.issuer.length), attempt: submit };
}

describe('rate limits', () => {
  it('locks an account after the configured failures, even for the right password, with a clear message', async () => {
    const account = await createTestAccount(server.db);
    const statuses: number[] = [];
    for (let i = 0; i < 4; i += 1) {
      const { attempt } = await loginPage(freshIp()); // a different IP each time: the account limit applies
      statuses.push((await attempt(account.email, 'wrong-password')).status);
    }
    expect(statuses).toEqual([401, 401, 401, 401]);
    const { attempt } = await loginPage(freshIp());
    const locked = await attempt(account.email, account.password);
    expect(locked.status).toBe(429);
    expect(locked.body).toContain('Too many attempts');
    expect(Number(locked.headers.get('retry-after'))).toBeGreaterThan(500);
  });

  it('locks an unknown email the same way, so the lock reveals nothing', async () => {
    const email = uniqueEmail('ghost');
    for (let i = 0; i < 4; i += 1) await (await loginPage(freshIp())).attempt(email, 'wrong-password');
    const locked = await (await loginPage(freshIp())).attempt(email, 'wrong-password');
    expect(locked.status).toBe(429);
  });

  it('limits one IP trying many accounts (credential stuffing)', async () => {
    const ip = freshIp();
    const statuses: number[] = [];
    for (let i = 0; i < 7; i += 1) {
      const { attempt } = await loginPage(ip);
      statuses.push((await attempt(uniqueEmail('stuffed'), 'password123')).status);
    }
    expect(statuses.slice(0, 6)).toEqual([401, 401, 401, 401, 401, 401]);
    expect(statuses[6]).toBe(429);
    // A real account from the same IP is refused too; from another IP it works.
    const account = await createTestAccount(server.db);
    expect((await (await loginPage(ip)).attempt(account.email, account.password)).status).toBe(429);
    expect((await (await loginPage(freshIp())).attempt(account.email, account.password)).status).toBe(303);
  });

  it('limits registrations per IP', async () => {
    const ip = freshIp();
    const statuses: number[] = [];
    for (let i = 0; i < 3; i += 1) {
      const { agent, action } = await loginPage(ip);
      const registerUrl = server.issuer + action.replace(/\/login$/, '/register');
      const form = await agent.request(registerUrl, { headers: { 'x-forwarded-for': ip } });
      const response = await agent.request(registerUrl, {
        form: { _csrf: hiddenField(form.body, '_csrf'), email: uniqueEmail('reg'), password: 'a long enough password', name: 'R' },
        headers: { 'x-forwarded-for': ip },
      });
      statuses.push(response.status);
    }
    expect(statuses).toEqual([303, 303, 429]);
  });

  it('limits password-reset requests per IP, for known and unknown addresses alike', async () => {
    const ip = freshIp();
    const agent = new UserAgent();
    const statuses: number[] = [];
    for (let i = 0; i < 3; i += 1) {
      const form = await agent.request(`${server.issuer}/password/forgot`, { headers: { 'x-forwarded-for': ip } });
      const response = await agent.request(`${server.issuer}/password/forgot`, {
        form: { _csrf: hiddenField(form.body, '_csrf'), email: uniqueEmail('reset') },
        headers: { 'x-forwarded-for': ip },
      });
      statuses.push(response.status);
    }
    expect(statuses).toEqual([200, 200, 429]);
  });

  it('refuses an IP whose token requests keep failing, without counting successes', async () => {
    const ip = freshIp();
    const post = (secret: string) =>
      fetch(`${server.issuer}/token`, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          'x-forwarded-for': ip,
          authorization: `Basic ${Buffer.from(`${registered.client.clientId}:${secret}`).toString('base64')}`,
        },
        body: 'grant_type=authorization_code&code=guess&redirect_uri=http%3A%2F%2F127.0.0.1%3A9400%2Fcb',
      });
    const statuses: number[] = [];
    for (let i = 0; i < 6; i += 1) statuses.push((await post('wrong')).status);
    expect(statuses.slice(0, 5)).toEqual([401, 401, 401, 401, 401]);
    expect(statuses[5]).toBe(429);
  });
});
