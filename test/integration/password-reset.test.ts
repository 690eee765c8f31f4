import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authenticate } from '../../src/accounts/store.js';
import { createTestAccount, uniqueEmail } from '../helpers/fixtures.js';
import { LogoutListener, waitFor } from '../helpers/listener.js';
import { artefactCounts, connectService, latestMail, linkIn, outboxFor, signInToAccountPages } from '../helpers/self-service.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { hiddenField, UserAgent } from '../helpers/user-agent.js';

let server: TestServer;
let listener: LogoutListener;

beforeAll(async () => {
  server = await startTestServer({ env: { MAIL_PER_RECIPIENT_PER_REQUESTER_PER_HOUR: '2' } });
  listener = await new LogoutListener().start();
});
afterAll(async () => {
  await server?.close();
  await listener?.stop();
});

async function resetRequestsRecorded(accountId: string): Promise<number> {
  const { rows } = await server.db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM audit_events WHERE account_id = $1 AND event = 'password.reset_requested'`,
    [accountId],
  );
  return rows[0]!.n;
}

/**
 * Asks for a reset link as a person would. The page answers before it looks the address up
 * (so its timing says nothing); for an address with an account, this waits until that work
 * was done (its audit event is written whether or not the mail limit let the link go).
 */
async function requestReset(agent: UserAgent, email: string, account?: { id: string }) {
  const before = account ? await resetRequestsRecorded(account.id) : 0;
  const form = await agent.request(`${server.issuer}/password/forgot`);
  const answer = await agent.request(`${server.issuer}/password/forgot`, { form: { _csrf: hiddenField(form.body, '_csrf'), email } });
  if (account && answer.status === 200) await waitFor(async () => (await resetRequestsRecorded(account.id)) > before, 5000);
  return answer;
}

async function resetWith(agent: UserAgent, link: string, password: string) {
  const page = await agent.request(link);
  if (page.status !== 200) return page;
  return agent.request(`${server.issuer}/password/reset`, {
    form: { _csrf: hiddenField(page.body, '_csrf'), token: hiddenField(page.body, 'token'), password },
  });
}

describe('password reset', () => {
  it('is offered on the login page', async () => {
    const page = await new UserAgent().request(`${server.issuer}/account/sign-in`);
    expect(page.body).toContain('href="/password/forgot"');
    expect(page.body).toContain('Forgot your password?');
  });

  it('answers the same whether or not the address has an account, and mails only an account', async () => {
    const account = await createTestAccount(server.db);
    const nobody = uniqueEmail('nobody');
    const agent = new UserAgent();
    const unknown = await requestReset(agent, nobody);
    const known = await requestReset(agent, account.email, account);
    expect(known.status).toBe(200);
    expect(unknown.status).toBe(known.status);
    const normalise = (body: string, email: string) => body.replaceAll(email, 'EMAIL').replace(/name="_csrf" value="[^"]*"/g, '');
    expect(normalise(unknown.body, nobody)).toBe(normalise(known.body, account.email));
    expect(known.body).toContain('Check your email');
    expect(await outboxFor(server.db, account.email, 'reset_password')).toHaveLength(1);
    expect(await outboxFor(server.db, nobody)).toHaveLength(0);
  });

  it('re-renders the form with a message for an invalid address', async () => {
    const response = await requestReset(new UserAgent(), 'not an address');
    expect(response.status).toBe(400);
    expect(response.body).toContain('Enter a valid email address.');
    expect(response.body).toContain('value="not an address"');
  });

  it('sets a new password once, ends every session, revokes refresh tokens and tells the services', async () => {
    const account = await createTestAccount(server.db);
    const browser = new UserAgent();
    const service = await connectService(server, browser, account, { port: 9701, backchannelLogoutUri: listener.url });
    const accountPages = new UserAgent();
    await signInToAccountPages(accountPages, server.issuer, account.email, account.password);
    expect(await artefactCounts(server.db, account.id)).toMatchObject({ Session: 1, RefreshToken: 1, Grant: 1 });

    await requestReset(new UserAgent(), account.email, account);
    const link = linkIn((await latestMail(server.db, account.email, 'reset_password')).body);
    expect(link).toMatch(new RegExp(`^${server.issuer}/password/reset\\?token=`));
    const agent = new UserAgent();
    const tokensBefore = listener.tokens.length;
    const done = await resetWith(agent, link, 'my brand new passphrase');
    expect(done.status).toBe(200);
    expect(done.body).toContain('Your password has been changed');

    expect(await authenticate(server.db, account.email, account.password)).toBeUndefined();
    expect(await authenticate(server.db, account.email, 'my brand new passphrase')).toBeDefined();
    const counts = await artefactCounts(server.db, account.id);
    expect(counts['Session'] ?? 0).toBe(0);
    expect(counts['RefreshToken'] ?? 0).toBe(0);
    expect(counts['Grant']).toBe(1); // what the person agreed to share stays
    await expect(oidc.refreshTokenGrant(service.config, service.tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    // The account page signed in before the reset is signed out too.
    const accountPage = await accountPages.request(`${server.issuer}/account`);
    expect(accountPage.status).toBe(303);
    // The service with a back-channel endpoint hears that the session ended.
    await waitFor(() => listener.tokens.length > tokensBefore);
    // The owner is told.
    expect(await outboxFor(server.db, account.email, 'password_changed')).toHaveLength(1);

    const reused = await resetWith(new UserAgent(), link, 'yet another passphrase');
    expect(reused.status).toBe(410);
    expect(reused.body).toContain('already been used');
    expect(await authenticate(server.db, account.email, 'my brand new passphrase')).toBeDefined();
  });

  it('refuses an expired or tampered link and a replaced one, changing nothing', async () => {
    const account = await createTestAccount(server.db);
    await requestReset(new UserAgent(), account.email, account);
    const first = linkIn((await latestMail(server.db, account.email, 'reset_password')).body);
    await requestReset(new UserAgent(), account.email, account);
    const second = linkIn((await latestMail(server.db, account.email, 'reset_password')).body);
    expect(second).not.toBe(first);
    // Only the latest link works.
    const replaced = await resetWith(new UserAgent(), first, 'some new passphrase');
    expect(replaced.status).toBe(400);
    expect(replaced.body).toContain('not valid');

    const token = new URL(second).searchParams.get('token')!;
    const tampered = await resetWith(new UserAgent(), `${server.issuer}/password/reset?token=${token.slice(1)}x`, 'some new passphrase');
    expect(tampered.status).toBe(400);

    // Expires between showing the form and posting it.
    const agent = new UserAgent();
    const page = await agent.request(second);
    expect(page.status).toBe(200);
    await server.db.query(`UPDATE account_tokens SET expires_at = now() - interval '1 second' WHERE account_id = $1`, [account.id]);
    const expired = await agent.request(`${server.issuer}/password/reset`, {
      form: { _csrf: hiddenField(page.body, '_csrf'), token, password: 'some new passphrase' },
    });
    expect(expired.status).toBe(410);
    expect(expired.body).toContain('expired');
    expect(expired.body).toContain('href="/password/forgot"');
    expect(await authenticate(server.db, account.email, account.password)).toBeDefined();
  });

  it('re-renders the new-password form for a weak password without spending the link', async () => {
    const account = await createTestAccount(server.db);
    await requestReset(new UserAgent(), account.email, account);
    const link = linkIn((await latestMail(server.db, account.email, 'reset_password')).body);
    const agent = new UserAgent();
    const weak = await resetWith(agent, link, 'password');
    expect(weak.status).toBe(400);
    expect(weak.body).toContain('one of the most common');
    const short = await resetWith(agent, link, 'short');
    expect(short.status).toBe(400);
    expect(short.body).toContain('at least 8 characters');
    expect((await resetWith(agent, link, 'a much better passphrase')).status).toBe(200);
  });

  it('silently stops mailing one address after MAIL_PER_RECIPIENT_PER_REQUESTER_PER_HOUR requests from one requester', async () => {
    const account = await createTestAccount(server.db);
    const answers = [];
    for (let attempt = 0; attempt < 4; attempt += 1) answers.push(await requestReset(new UserAgent(), account.email, account));
    expect(answers.map((answer) => answer.status)).toEqual([200, 200, 200, 200]);
    expect(await outboxFor(server.db, account.email, 'reset_password')).toHaveLength(2);
  });
});
