import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { limitSubject } from '../../src/security/client-address.js';
import { createTestAccount, createTestClient, uniqueEmail } from '../helpers/fixtures.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { openServiceLogin, randomIp } from '../helpers/service-sign-in.js';
import type { RegisteredClient } from '../../src/clients/store.js';

/*
 * Security review, finding 1: behind the documented proxy set-up the client must not pick its
 * own address. An appending proxy (nginx's $proxy_add_x_forwarded_for, cloud load
 * balancers) puts the address it saw on the right; everything to its left is the client's.
 */

let server: TestServer;
let twoHops: TestServer;
let registered: RegisteredClient;

beforeAll(async () => {
  const limits = {
    TRUST_PROXY: 'true',
    LOGIN_MAX_FAILURES_PER_IP: '5',
    LOGIN_MAX_FAILURES_PER_ACCOUNT: '1000',
    TOKEN_FAILURES_PER_IP_PER_MINUTE: '4',
  };
  [server, twoHops] = await Promise.all([
    startTestServer({ env: limits }),
    startTestServer({ env: { ...limits, TRUSTED_PROXY_HOPS: '2' } }),
  ]);
  registered = await createTestClient(server.db, server.validator, { redirectUris: ['http://127.0.0.1:9420/cb'] });
});
afterAll(async () => {
  await Promise.all([server?.close(), twoHops?.close()]);
});

async function loginPage(target: TestServer, forwardedFor: () => string) {
  return (await openServiceLogin(target, registered, { forwardedFor })).submit;
}

async function auditIps(target: TestServer, accountId: string): Promise<string[]> {
  const { rows } = await target.db.query<{ ip: string }>('SELECT ip FROM audit_events WHERE account_id = $1 ORDER BY id', [accountId]);
  return rows.map((row) => row.ip);
}

describe('the client address behind a trusted proxy', () => {
  it('is the address the proxy appended, whatever the client wrote to its left: the per-IP limit holds', async () => {
    const real = randomIp();
    const statuses: number[] = [];
    for (let i = 0; i < 6; i += 1) {
      // A fresh forged address in every request, as an attacker would send.
      const attempt = await loginPage(server, () => `${randomIp()}, ${real}`);
      statuses.push((await attempt(uniqueEmail('stuffing'), 'not-the-password')).status);
    }
    expect(statuses).toEqual([401, 401, 401, 401, 401, 429]);
    // From an address of its own, a person still signs in.
    const account = await createTestAccount(server.db);
    expect((await (await loginPage(server, () => `${real}, ${randomIp()}`))(account.email, account.password)).status).toBe(303);
  });

  it('is what the audit log records, never the forged entry', async () => {
    const account = await createTestAccount(server.db);
    const real = randomIp();
    const forged = randomIp();
    await (
      await loginPage(server, () => `${forged}, ${real}`)
    )(account.email, 'wrong-password');
    await (
      await loginPage(server, () => `${forged}, ${real}`)
    )(account.email, account.password);
    expect(await auditIps(server, account.id)).toEqual([real, real]);
  });

  it('with TRUSTED_PROXY_HOPS=2 is the address the farther proxy saw (the second entry from the right)', async () => {
    const account = await createTestAccount(twoHops.db);
    const client = randomIp();
    await (
      await loginPage(twoHops, () => `${randomIp()}, ${client}, 192.0.2.10`)
    )(account.email, account.password);
    expect(await auditIps(twoHops, account.id)).toEqual([client]);
  });

  it('keys the token-endpoint failure limit on the real address too', async () => {
    const real = randomIp();
    const statuses: number[] = [];
    for (let i = 0; i < 5; i += 1) {
      const response = await fetch(`${server.issuer}/token`, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          'x-forwarded-for': `${randomIp()}, ${real}`,
          authorization: `Basic ${Buffer.from(`${registered.client.clientId}:wrong`).toString('base64')}`,
        },
        body: 'grant_type=authorization_code&code=guess&redirect_uri=http%3A%2F%2F127.0.0.1%3A9420%2Fcb',
      });
      statuses.push(response.status);
    }
    expect(statuses).toEqual([401, 401, 401, 401, 429]);
  });
});

describe('what a per-address limit counts', () => {
  it('an IPv4 address as it is, an IPv6 address by its /64, an IPv4-mapped address as IPv4', () => {
    expect(limitSubject('203.0.113.7')).toBe('203.0.113.7');
    expect(limitSubject('2001:db8:1:2:aaaa:bbbb:cccc:dddd')).toBe('2001:db8:1:2::/64');
    expect(limitSubject('2001:db8:1:2::1')).toBe(limitSubject('2001:0db8:0001:0002:ffff:0:0:9'));
    expect(limitSubject('2001:db8:1:3::1')).not.toBe(limitSubject('2001:db8:1:2::1'));
    expect(limitSubject('::ffff:198.51.100.4')).toBe('198.51.100.4');
    expect(limitSubject('::1')).toBe('0:0:0:0::/64');
  });
});
