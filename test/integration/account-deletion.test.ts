import { execFile } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createTestAccount, uniqueEmail } from '../helpers/fixtures.js';
import { connectService, latestMail, postForm, signInToAccountPages } from '../helpers/self-service.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { dumpEveryTable } from '../helpers/service-sign-in.js';
import { hiddenField, UserAgent } from '../helpers/user-agent.js';

/*
 * Security review, finding 13: after deletion, by either door, nothing about the person
 * remains in any table but a minimal record that an account was deleted.
 */

let server: TestServer;
const run = promisify(execFile);
const bin = fileURLToPath(new URL('../../dist/cli/index.js', import.meta.url));

beforeAll(async () => {
  server = await startTestServer({ env: { TRUST_PROXY: 'true' } });
});
afterAll(async () => {
  await server?.close();
});

/**
 * A person who used the account for real, from their own address and browser: a failed and a
 * successful sign-in at a service, consent, the account pages, a profile change, a data
 * export and a password-reset request.
 */
async function personWithHistory() {
  const tag = randomBytes(4).toString('hex');
  const ip = `10.${randomInt(256)}.${randomInt(256)}.${randomInt(1, 255)}`;
  const userAgent = `Mozilla/5.0 (X11; Linux x86_64) DeletionScan/${tag} Chrome/131.0.0.0 Safari/537.36`;
  const account = await createTestAccount(server.db, { email: uniqueEmail(`gone-${tag}`), name: `Zebulon ${tag}`, givenName: `Zeb${tag}` });
  const browser = new UserAgent({ headers: { 'x-forwarded-for': ip, 'user-agent': userAgent } });
  await connectService(server, browser, { email: account.email, password: account.password }, { port: 9490 + randomInt(9) });

  const page = await signInToAccountPages(browser, server.issuer, account.email, account.password);
  await postForm(browser, server.issuer, page, '/account/profile', {
    name: `Zebulon ${tag}`,
    givenName: `Zeb${tag}`,
    familyName: '',
    locale: 'en',
  });
  await postForm(browser, server.issuer, page, '/account/data/export');
  const wrong = await new UserAgent({ headers: { 'x-forwarded-for': ip, 'user-agent': userAgent } }).request(
    `${server.issuer}/account/sign-in`,
  );
  await browser.request(`${server.issuer}/account/sign-in`, {
    form: { _csrf: hiddenField(wrong.body, '_csrf'), email: account.email, password: 'not my password', next: '/account' },
  });
  const forgot = await browser.request(`${server.issuer}/password/forgot`);
  await browser.request(`${server.issuer}/password/forgot`, { form: { _csrf: hiddenField(forgot.body, '_csrf'), email: account.email } });
  await latestMail(server.db, account.email, 'reset_password');
  const traces = [account.email, account.name!, `Zeb${tag}`, ip, userAgent, `DeletionScan/${tag}`];
  const before = await dumpEveryTable(server.db);
  // The history is really there before the deletion: the scan below means something.
  expect(before).toContain(account.email);
  expect(before).toContain(ip);
  return { account, browser, traces };
}

async function assertNothingLeft(accountId: string, traces: string[]) {
  const dump = await dumpEveryTable(server.db);
  for (const trace of traces) expect(dump.includes(trace), `"${trace}" is still stored`).toBe(false);
  const { rows } = await server.db.query<{ event: string; ip: string | null; details: Record<string, unknown> }>(
    'SELECT event, ip, details FROM audit_events WHERE account_id = $1 OR actor = $1',
    [accountId],
  );
  expect(rows).toEqual([{ event: 'account.deleted', ip: null, details: expect.not.objectContaining({ browser: expect.anything() }) }]);
}

describe('after an account is deleted', () => {
  it('from the account page, no table holds its email, name, IP or browser', async () => {
    const { account, browser, traces } = await personWithHistory();
    const form = await browser.request(`${server.issuer}/account/delete`);
    const deleted = await postForm(browser, server.issuer, form, '/account/delete', { password: account.password, confirm: 'yes' });
    expect(deleted.status).toBe(200);
    await assertNothingLeft(account.id, traces);
  });

  it('from the CLI, no table holds them either', async () => {
    const { account, traces } = await personWithHistory();
    await run(process.execPath, [bin, 'accounts', 'remove', account.email, '--json'], {
      env: { PATH: process.env['PATH'] ?? '', DATABASE_URL: inject('databaseUrl'), LOG_LEVEL: 'warn' },
      timeout: 20_000,
    });
    await assertNothingLeft(account.id, traces);
  });
});
