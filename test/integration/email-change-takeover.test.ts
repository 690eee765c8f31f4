import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authenticate, findAccountById } from '../../src/accounts/store.js';
import { createTestAccount, uniqueEmail } from '../helpers/fixtures.js';
import { LogoutListener, waitFor } from '../helpers/listener.js';
import { artefactCounts, connectService, latestMail, linkIn, outboxFor, postForm, signInToAccountPages } from '../helpers/self-service.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { hiddenField, UserAgent } from '../helpers/user-agent.js';

/*
 * Security review, finding 2: a few minutes at someone's unlocked browser must not become a
 * permanent takeover through the email address.
 */

let server: TestServer;
let listener: LogoutListener;

beforeAll(async () => {
  server = await startTestServer();
  listener = await new LogoutListener().start();
});
afterAll(async () => {
  await server?.close();
  await listener?.stop();
});

async function signedIn() {
  const account = await createTestAccount(server.db);
  const agent = new UserAgent();
  const page = await signInToAccountPages(agent, server.issuer, account.email, account.password);
  return { account, agent, page };
}

/** Opens a mailed link as a person would: the page, then its confirmation button. */
async function openLink(link: string) {
  const agent = new UserAgent();
  const page = await agent.request(link);
  if (page.status !== 200) return page;
  return agent.request(new URL(link).origin + new URL(link).pathname, {
    form: { _csrf: hiddenField(page.body, '_csrf'), token: hiddenField(page.body, 'token') },
  });
}

async function linkRows(accountId: string) {
  const { rows } = await server.db.query<{ purpose: string; used: boolean; lifetime: number }>(
    `SELECT purpose, used_at IS NOT NULL AS used, extract(epoch FROM expires_at - created_at)::int AS lifetime
     FROM account_tokens WHERE account_id = $1 ORDER BY created_at`,
    [accountId],
  );
  return rows;
}

describe('changing the email address', () => {
  it('needs the current password: without it nothing is sent and nothing is pending', async () => {
    const { account, agent, page } = await signedIn();
    const newEmail = uniqueEmail('hijack');
    for (const password of ['', 'not-the-password']) {
      const refused = await postForm(agent, server.issuer, page, '/account/email', { newEmail, password });
      expect(refused.status, password).toBe(400);
      expect(refused.body).toContain('Your current password is not correct.');
    }
    expect(await outboxFor(server.db, newEmail)).toHaveLength(0);
    expect(await outboxFor(server.db, account.email, 'email_change_requested')).toHaveLength(0);
    expect(await linkRows(account.id)).toEqual([]);
    // Wrong answers count like failed sign-ins: they lock like them.
    const { rows } = await server.db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM audit_events WHERE account_id = $1 AND event = 'sign_in' AND outcome = 'failure'`,
      [account.id],
    );
    expect(rows[0]!.n).toBe(2);
  });

  it('tells the current address at once, with a link that cancels a pending change for at least 7 days', async () => {
    const { account, agent, page } = await signedIn();
    const newEmail = uniqueEmail('pending');
    const requested = await postForm(agent, server.issuer, page, '/account/email', { newEmail, password: account.password });
    expect(requested.status).toBe(303);

    const notice = await latestMail(server.db, account.email, 'email_change_requested');
    const revert = linkIn(notice.body);
    expect(revert).toMatch(new RegExp(`^${server.issuer}/email/revert\\?token=`));
    expect((await linkRows(account.id)).find((row) => row.purpose === 'revert_email_change')!.lifetime).toBeGreaterThanOrEqual(7 * 86400);

    const cancelled = await openLink(revert);
    expect(cancelled.status).toBe(200);
    expect(cancelled.body).toContain('The change was cancelled');
    const change = linkIn((await latestMail(server.db, newEmail, 'change_email')).body);
    expect((await openLink(change)).status).toBe(410);
    expect((await findAccountById(server.db, account.id))!.email).toBe(account.email);
  });

  it('after the change went through, the link restores the old address, ends every session and tells the services', async () => {
    const { account, agent, page } = await signedIn();
    const service = await connectService(server, new UserAgent(), account, { port: 9871, backchannelLogoutUri: listener.url });
    const newEmail = uniqueEmail('taken-over');
    await postForm(agent, server.issuer, page, '/account/email', { newEmail, password: account.password });
    const revert = linkIn((await latestMail(server.db, account.email, 'email_change_requested')).body);
    expect((await openLink(linkIn((await latestMail(server.db, newEmail, 'change_email')).body))).status).toBe(200);
    expect((await findAccountById(server.db, account.id))!.email).toBe(newEmail);
    // The old address is told again once it happened, with a link of its own.
    expect(linkIn((await latestMail(server.db, account.email, 'email_changed')).body)).toMatch(/\/email\/revert\?token=/);

    const tokensBefore = listener.tokens.length;
    const restored = await openLink(revert);
    expect(restored.status).toBe(200);
    expect(restored.body).toContain('Your email address is back');
    expect(await findAccountById(server.db, account.id)).toMatchObject({ email: account.email, emailVerified: true });
    expect(await authenticate(server.db, newEmail, account.password)).toBeUndefined();
    expect((await agent.request(`${server.issuer}/account`)).status).toBe(303); // the account page is signed out
    expect(await artefactCounts(server.db, account.id)).not.toHaveProperty('Session');
    await expect(oidc.refreshTokenGrant(service.config, service.tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    await waitFor(() => listener.tokens.length > tokensBefore);
    // Spent: a second use changes nothing.
    expect((await openLink(revert)).status).toBe(410);
  });

  it('a link that was pending is void once the password changes, a reset completes or the address changes', async () => {
    for (const change of ['password', 'reset', 'email'] as const) {
      const { account, agent, page } = await signedIn();
      const elsewhere = uniqueEmail('elsewhere');
      await postForm(agent, server.issuer, page, '/account/email', { newEmail: elsewhere, password: account.password });
      const pendingChange = linkIn((await latestMail(server.db, elsewhere, 'change_email')).body);
      const forgot = await agent.request(`${server.issuer}/password/forgot`);
      await agent.request(`${server.issuer}/password/forgot`, { form: { _csrf: hiddenField(forgot.body, '_csrf'), email: account.email } });
      const pendingReset = linkIn((await latestMail(server.db, account.email, 'reset_password')).body);
      const revert = linkIn((await latestMail(server.db, account.email, 'email_change_requested')).body);

      let spentByTheChange: string | undefined;
      if (change === 'password') {
        const form = await agent.request(`${server.issuer}/account/password`);
        const done = await postForm(agent, server.issuer, form, '/account/password', {
          currentPassword: account.password,
          newPassword: 'a whole new passphrase',
        });
        expect(done.status).toBe(303);
      } else if (change === 'reset') {
        const resetAgent = new UserAgent();
        const form = await resetAgent.request(pendingReset);
        const done = await resetAgent.request(`${server.issuer}/password/reset`, {
          form: { _csrf: hiddenField(form.body, '_csrf'), token: hiddenField(form.body, 'token'), password: 'a whole new passphrase' },
        });
        expect(done.status).toBe(200);
        spentByTheChange = pendingReset;
      } else {
        const other = uniqueEmail('second');
        const form = await agent.request(`${server.issuer}/account`);
        await postForm(agent, server.issuer, form, '/account/email', { newEmail: other, password: account.password });
        expect((await openLink(linkIn((await latestMail(server.db, other, 'change_email')).body))).status).toBe(200);
      }

      for (const link of [pendingChange, pendingReset]) {
        if (link === spentByTheChange) continue;
        const page = await new UserAgent().request(link);
        // 410 once spent; 400 when a newer request of the same kind replaced it.
        expect([400, 410], `${change}: ${new URL(link).pathname} answered ${page.status}`).toContain(page.status);
      }
      // The previous owner's way back outlives every one of these changes.
      expect((await new UserAgent().request(revert)).status, change).toBe(200);
    }
  });
});
