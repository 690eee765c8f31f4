import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RegisteredClient } from '../../src/clients/store.js';
import { createTestAccount, createTestClient } from '../helpers/fixtures.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { openServiceLogin, randomIp } from '../helpers/service-sign-in.js';

/*
 * Security review, findings 3 and 11: the lockout must hold against a concurrent burst, and
 * sign-ins are limited whatever their outcome.
 */

let lockout: TestServer;
let attempts: TestServer;
const clients = new Map<TestServer, RegisteredClient>();

beforeAll(async () => {
  [lockout, attempts] = await Promise.all([
    startTestServer({ env: { TRUST_PROXY: 'true', LOGIN_MAX_FAILURES_PER_ACCOUNT: '10', SIGN_INS_PER_ACCOUNT_PER_MINUTE: '1000' } }),
    startTestServer({ env: { TRUST_PROXY: 'true', SIGN_INS_PER_ACCOUNT_PER_MINUTE: '5', SIGN_INS_PER_IP_PER_MINUTE: '8' } }),
  ]);
  for (const server of [lockout, attempts]) {
    clients.set(server, await createTestClient(server.db, server.validator, { redirectUris: ['http://127.0.0.1:9430/cb'] }));
  }
});
afterAll(async () => {
  await Promise.all([lockout?.close(), attempts?.close()]);
});

/** A sign-in page at the service's request; returns a function that submits it (as often as asked). */
async function loginForm(server: TestServer, ip: string) {
  return (await openServiceLogin(server, clients.get(server)!, { forwardedFor: ip })).submit;
}

async function verifiedFailures(server: TestServer, accountId: string): Promise<number> {
  const { rows } = await server.db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM audit_events WHERE account_id = $1 AND event = 'sign_in' AND outcome = 'failure'`,
    [accountId],
  );
  return rows[0]!.n;
}

describe('the lockout under a concurrent burst', () => {
  it('lets at most the limit of 40 concurrent wrong guesses reach verification, then refuses the right password', async () => {
    const account = await createTestAccount(lockout.db);
    const submit = await loginForm(lockout, randomIp());
    const burst = await Promise.all(Array.from({ length: 40 }, () => submit(account.email, 'a wrong guess')));
    const statuses = burst.map((response) => response.status);
    expect(statuses.filter((status) => status === 401).length).toBeLessThanOrEqual(10);
    expect(statuses.every((status) => status === 401 || status === 429)).toBe(true);
    // Every guess that was checked left an audit record: no more than the limit were.
    expect(await verifiedFailures(lockout, account.id)).toBeLessThanOrEqual(10);

    const correct = await submit(account.email, account.password);
    expect(correct.status).toBe(429);
    expect(Number(correct.headers.get('retry-after'))).toBeGreaterThan(0);
  });
});

describe('sign-ins whatever their outcome', () => {
  it('are limited per account: past SIGN_INS_PER_ACCOUNT_PER_MINUTE even the right password waits', async () => {
    const account = await createTestAccount(attempts.db);
    const statuses: number[] = [];
    for (let i = 0; i < 6; i += 1) statuses.push((await (await loginForm(attempts, randomIp()))(account.email, account.password)).status);
    expect(statuses).toEqual([303, 303, 303, 303, 303, 429]);
  });

  it('are limited per IP, across accounts', async () => {
    const ip = randomIp();
    const statuses: number[] = [];
    for (let i = 0; i < 9; i += 1) {
      const account = await createTestAccount(attempts.db);
      statuses.push((await (await loginForm(attempts, ip))(account.email, account.password)).status);
    }
    expect(statuses.slice(0, 8)).toEqual(Array<number>(8).fill(303));
    expect(statuses[8]).toBe(429);
  });
});
