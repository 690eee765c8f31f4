import { afterEach, describe, expect, it } from 'vitest';
import { createTestAccount, createTestClient } from '../helpers/fixtures.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { openServiceLogin, randomIp } from '../helpers/service-sign-in.js';
import type { PageResponse } from '../helpers/user-agent.js';

/*
 * Security review, finding 11: argon2 work waits in one bounded queue, so a burst of
 * sign-ins cannot occupy the thread pool and slow everyone else: past the queue's bound, or
 * after waiting too long, a sign-in is answered 503 with Retry-After at once. The queue is
 * per process, so every test here has a server of its own, one at a time.
 */

let server: TestServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

/**
 * Prepares `count` sign-ins of different people from different addresses, ready to submit at
 * once. One after another: creating the accounts hashes passwords in this process's queue too.
 */
async function preparedSignIns(target: TestServer, count: number) {
  const registered = await createTestClient(target.db, target.validator, { redirectUris: ['http://127.0.0.1:9440/cb'] });
  const submits: (() => Promise<PageResponse>)[] = [];
  for (let i = 0; i < count; i += 1) {
    const account = await createTestAccount(target.db);
    const { submit } = await openServiceLogin(target, registered, { forwardedFor: randomIp() });
    submits.push(() => submit(account.email, account.password));
  }
  return submits;
}

describe('the argon2 queue', () => {
  it('refuses at once past its bound, with 503 and Retry-After; the sign-ins it took succeed', async () => {
    server = await startTestServer({
      env: {
        TRUST_PROXY: 'true',
        PASSWORD_HASHING_CONCURRENCY: '1',
        PASSWORD_HASHING_QUEUE_MAX: '1',
        PASSWORD_HASHING_QUEUE_TIMEOUT_MS: '60000',
      },
    });
    const submits = await preparedSignIns(server, 10);
    const answers = await Promise.all(submits.map((submit) => submit()));
    const statuses = answers.map((answer) => answer.status);
    expect(statuses.filter((status) => status === 503).length).toBeGreaterThan(0);
    expect(statuses.every((status) => status === 303 || status === 503)).toBe(true);
    for (const answer of answers.filter((a) => a.status === 503)) {
      expect(Number(answer.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(answer.body).toContain('temporarily unavailable');
    }
  });

  it('refuses a sign-in that waited longer than PASSWORD_HASHING_QUEUE_TIMEOUT_MS', async () => {
    server = await startTestServer({
      env: {
        TRUST_PROXY: 'true',
        PASSWORD_HASHING_CONCURRENCY: '1',
        PASSWORD_HASHING_QUEUE_MAX: '100',
        PASSWORD_HASHING_QUEUE_TIMEOUT_MS: '1',
      },
    });
    const submits = await preparedSignIns(server, 6);
    const statuses = (await Promise.all(submits.map((submit) => submit()))).map((answer) => answer.status);
    // The first runs at once; the others wait behind a ~25 ms argon2 verification: far over 1 ms.
    expect(statuses).toContain(303);
    expect(statuses).toContain(503);
    expect(statuses.every((status) => status === 303 || status === 503)).toBe(true);
  });
});
