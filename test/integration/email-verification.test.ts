import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestAccount, createTestClient, uniqueEmail } from '../helpers/fixtures.js';
import { discoverClient, startAuthorization } from '../helpers/oidc-client.js';
import { connectService, latestMail, linkIn, outboxFor, postForm, signInToAccountPages } from '../helpers/self-service.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { formActions, hiddenField, UserAgent } from '../helpers/user-agent.js';

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer({ env: { MAIL_PER_ACCOUNT_PER_HOUR: '2' } });
});
afterAll(async () => {
  await server?.close();
});

const isVerified = async (email: string) =>
  (await server.db.query<{ email_verified: boolean }>('SELECT email_verified FROM accounts WHERE lower(email) = lower($1)', [email]))
    .rows[0]?.email_verified;

/** Registers through a service's sign-in page; returns the agent, the service and its tokens. */
async function register(port: number) {
  const person = { email: uniqueEmail('new'), password: 'a long enough password', registerName: 'New Person' };
  const agent = new UserAgent();
  const service = await connectService(server, agent, person, { port });
  return { agent, person, service };
}

describe('registration with email verification', () => {
  it('lets a new account finish the sign-in at once, with email_verified false, and mails a verification link', async () => {
    const { person, service } = await register(9601);
    expect(service.pages).toEqual(['register', 'consent']);
    const claims = await oidc.fetchUserInfo(service.config, service.tokens.access_token, service.tokens.claims()!.sub);
    expect(claims).toMatchObject({ email: person.email, email_verified: false, name: 'New Person' });

    const mail = await latestMail(server.db, person.email, 'verify_email');
    expect(mail.language).toBe('en');
    expect(mail.subject).toBe('Confirm your email address');
    expect(linkIn(mail.body)).toMatch(new RegExp(`^${server.issuer}/email/verify\\?token=[A-Za-z0-9_-]{43}$`));
    // Only a hash of the token is stored.
    const token = new URL(linkIn(mail.body)).searchParams.get('token')!;
    const { rows } = await server.db.query<{ token_hash: string }>('SELECT token_hash FROM account_tokens');
    expect(rows.some((row) => row.token_hash === token)).toBe(false);
  });

  it('verifies only when the confirmation is posted: opening the link changes nothing, confirming sets email_verified', async () => {
    const { person, service } = await register(9602);
    const link = linkIn((await latestMail(server.db, person.email, 'verify_email')).body);
    const visitor = new UserAgent();
    const page = await visitor.request(link);
    expect(page.status).toBe(200);
    expect(page.headers.get('cache-control')).toBe('no-store');
    expect(page.body).toContain(person.email);
    expect(await isVerified(person.email)).toBe(false);

    const done = await visitor.request(`${server.issuer}/email/verify`, {
      form: { _csrf: hiddenField(page.body, '_csrf'), token: hiddenField(page.body, 'token') },
    });
    expect(done.status).toBe(200);
    expect(done.body).toContain('Email address confirmed');
    expect(await isVerified(person.email)).toBe(true);
    const claims = await oidc.fetchUserInfo(service.config, service.tokens.access_token, service.tokens.claims()!.sub);
    expect(claims).toMatchObject({ email_verified: true });
  });

  it('shows a clear page for a reused, expired or tampered link, and changes nothing', async () => {
    const reused = await register(9603);
    const link = linkIn((await latestMail(server.db, reused.person.email, 'verify_email')).body);
    const agent = new UserAgent();
    const page = await agent.request(link);
    const form = { _csrf: hiddenField(page.body, '_csrf'), token: hiddenField(page.body, 'token') };
    expect((await agent.request(`${server.issuer}/email/verify`, { form })).status).toBe(200);
    const again = await agent.request(`${server.issuer}/email/verify`, { form });
    expect(again.status).toBe(410);
    expect(again.body).toContain('already been used');
    expect(again.body).toContain('Nothing has been changed');
    expect((await agent.request(link)).status).toBe(410);

    const expired = await register(9604);
    const expiredLink = linkIn((await latestMail(server.db, expired.person.email, 'verify_email')).body);
    await server.db.query(
      `UPDATE account_tokens SET expires_at = now() - interval '1 second'
       WHERE account_id = (SELECT id FROM accounts WHERE lower(email) = lower($1))`,
      [expired.person.email],
    );
    const expiredPage = await agent.request(expiredLink);
    expect(expiredPage.status).toBe(410);
    expect(expiredPage.body).toContain('expired');
    const expiredPost = await agent.request(`${server.issuer}/email/verify`, {
      form: { _csrf: form._csrf, token: new URL(expiredLink).searchParams.get('token')! },
    });
    expect(expiredPost.status).toBe(410);
    expect(await isVerified(expired.person.email)).toBe(false);

    const tampered = await register(9605);
    const good = new URL(linkIn((await latestMail(server.db, tampered.person.email, 'verify_email')).body));
    const token = good.searchParams.get('token')!;
    const flipped = `${token.slice(0, -1)}${token.endsWith('A') ? 'B' : 'A'}`;
    for (const bad of [flipped, 'short', `${token}x`, '%00', '']) {
      const response = await agent.request(`${server.issuer}/email/verify?token=${encodeURIComponent(bad)}`);
      expect(response.status, bad).toBe(400);
      expect(response.body).toContain('not valid');
    }
    const tamperedPost = await agent.request(`${server.issuer}/email/verify`, {
      form: { _csrf: form._csrf, token: flipped },
    });
    expect(tamperedPost.status).toBe(400);
    expect(await isVerified(tampered.person.email)).toBe(false);
  });

  it('refuses to post a confirmation without the CSRF token', async () => {
    const { person } = await register(9606);
    const link = linkIn((await latestMail(server.db, person.email, 'verify_email')).body);
    const agent = new UserAgent();
    const page = await agent.request(link);
    const forged = await agent.request(`${server.issuer}/email/verify`, { form: { token: hiddenField(page.body, 'token') } });
    expect(forged.status).toBe(400);
    expect(await isVerified(person.email)).toBe(false);
  });

  it('resends the link from the account page, at most MAIL_PER_ACCOUNT_PER_HOUR times an hour', async () => {
    const account = await createTestAccount(server.db, { emailVerified: false });
    const agent = new UserAgent();
    const page = await signInToAccountPages(agent, server.issuer, account.email, account.password);
    expect(page.body).toContain('Not verified yet');
    for (let attempt = 0; attempt < 2; attempt += 1) {
      const sent = await postForm(agent, server.issuer, page, '/account/email/resend');
      expect(sent.status).toBe(303);
      expect(sent.location).toBe(`${server.issuer}/account?done=email-resent`);
    }
    const limited = await postForm(agent, server.issuer, page, '/account/email/resend');
    expect(limited.status).toBe(429);
    expect(limited.body).toContain('Too many attempts');
    expect(await outboxFor(server.db, account.email, 'verify_email')).toHaveLength(2);

    // Either resent link verifies the address.
    const first = linkIn((await outboxFor(server.db, account.email, 'verify_email'))[0]!.body);
    const confirm = await agent.request(first);
    await agent.request(`${server.issuer}/email/verify`, {
      form: { _csrf: hiddenField(confirm.body, '_csrf'), token: hiddenField(confirm.body, 'token') },
    });
    expect(await isVerified(account.email)).toBe(true);
  });

  it('answers registration of a registered address without saying so, and tells the owner instead', async () => {
    const owner = await createTestAccount(server.db);
    const before = await outboxFor(server.db, owner.email);
    const service = await createTestClient(server.db, server.validator, { redirectUris: ['http://127.0.0.1:9607/cb'] });
    const config = await discoverClient(server.issuer, service.client.clientId, service.clientSecret);
    const { url } = await startAuthorization(config, 'http://127.0.0.1:9607/cb', 'openid');
    const agent = new UserAgent();
    const login = await agent.follow(url.href, 'http://127.0.0.1:9607/cb');
    if ('stoppedAt' in login) throw new Error('unexpected redirect');
    const registerUrl = `${server.issuer}${formActions(login.body)
      .find((action) => action.endsWith('/login'))!
      .replace(/login$/, 'register')}`;
    const form = await agent.request(registerUrl);
    const attempt = await agent.request(registerUrl, {
      form: { _csrf: hiddenField(form.body, '_csrf'), email: owner.email.toUpperCase(), password: 'some other password', name: 'Impostor' },
    });
    expect(attempt.status).toBe(400);
    expect(attempt.body).toContain('We could not create an account with these details');
    const notices = await outboxFor(server.db, owner.email, 'register_existing');
    expect(notices.length).toBe(before.filter((mail) => mail.purpose === 'register_existing').length + 1);
    expect(linkIn(notices.at(-1)!.body)).toBe(`${server.issuer}/password/forgot`);
    expect(await outboxFor(server.db, owner.email, 'verify_email')).toHaveLength(0);
  });
});
