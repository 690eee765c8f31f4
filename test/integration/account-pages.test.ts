import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authenticate, findAccountById } from '../../src/accounts/store.js';
import { createTestAccount, uniqueEmail } from '../helpers/fixtures.js';
import { LogoutListener, waitFor } from '../helpers/listener.js';
import { artefactCounts, connectService, latestMail, linkIn, outboxFor, postForm, signInToAccountPages } from '../helpers/self-service.js';
import { startAuthorization } from '../helpers/oidc-client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { completeAuthorization, hiddenField, UserAgent, type PageResponse } from '../helpers/user-agent.js';

let server: TestServer;
const listeners: LogoutListener[] = [];

beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server?.close();
  await Promise.all(listeners.map((listener) => listener.stop()));
});

async function listener() {
  const started = await new LogoutListener().start();
  listeners.push(started);
  return started;
}

const chromeOnLinux = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36';
const errorText = (page: PageResponse) => /<p class="error"[^>]*>([^<]*)</.exec(page.body)?.[1];

async function signedIn() {
  const account = await createTestAccount(server.db);
  const agent = new UserAgent();
  const page = await signInToAccountPages(agent, server.issuer, account.email, account.password);
  return { account, agent, page };
}

async function openConfirmation(agent: UserAgent, link: string) {
  const page = await agent.request(link);
  return agent.request(new URL(link).origin + new URL(link).pathname, {
    form: { _csrf: hiddenField(page.body, '_csrf'), token: hiddenField(page.body, 'token') },
  });
}

describe('account pages: signing in', () => {
  it('sends a visitor without a session to the sign-in page and back to the page asked for', async () => {
    const account = await createTestAccount(server.db);
    const agent = new UserAgent();
    const first = await agent.request(`${server.issuer}/account/services`);
    expect(first.status).toBe(303);
    expect(first.location).toBe(`${server.issuer}/account/sign-in?next=%2Faccount%2Fservices`);
    const form = await agent.request(first.location!);
    expect(form.status).toBe(200);
    expect(form.body).toContain('name="password"');
    expect(hiddenField(form.body, 'next')).toBe('/account/services');
    const done = await agent.request(`${server.issuer}/account/sign-in`, {
      form: { _csrf: hiddenField(form.body, '_csrf'), email: account.email, password: account.password, next: '/account/services' },
    });
    expect(done.status).toBe(303);
    expect(done.location).toBe(`${server.issuer}/account/services`);
    const cookie = done.headers.getSetCookie().find((value) => value.startsWith('idp.account='))!;
    expect(cookie.toLowerCase()).toContain('httponly');
    expect(cookie.toLowerCase()).toContain('samesite=lax');
    expect(cookie.toLowerCase()).toContain('path=/account');
    expect(done.headers.getSetCookie().some((value) => value.startsWith('idp.account.sig='))).toBe(true);
    // Only a hash of the session id is stored.
    const id = cookie.split(';')[0]!.split('=')[1]!;
    const { rows } = await server.db.query('SELECT 1 FROM account_sessions WHERE id_hash = $1', [id]);
    expect(rows).toHaveLength(0);
  });

  it('never redirects elsewhere after sign-in', async () => {
    const account = await createTestAccount(server.db);
    for (const next of ['https://attacker.example/', '//attacker.example/', '/\\attacker.example', '/interaction/x']) {
      const agent = new UserAgent();
      const form = await agent.request(`${server.issuer}/account/sign-in`);
      const done = await agent.request(`${server.issuer}/account/sign-in`, {
        form: { _csrf: hiddenField(form.body, '_csrf'), email: account.email, password: account.password, next },
      });
      expect(done.location, next).toBe(`${server.issuer}/account`);
    }
  });

  it('answers a wrong password like the service sign-in, and a forged form with 400', async () => {
    const account = await createTestAccount(server.db);
    const agent = new UserAgent();
    const form = await agent.request(`${server.issuer}/account/sign-in`);
    const wrong = await agent.request(`${server.issuer}/account/sign-in`, {
      form: { _csrf: hiddenField(form.body, '_csrf'), email: account.email, password: 'not the password' },
    });
    expect(wrong.status).toBe(401);
    expect(errorText(wrong)).toBe('The email address or password is incorrect.');
    const nobody = await agent.request(`${server.issuer}/account/sign-in`, {
      form: { _csrf: hiddenField(form.body, '_csrf'), email: uniqueEmail('nobody'), password: 'not the password' },
    });
    expect(errorText(nobody)).toBe(errorText(wrong));
    const forged = await agent.request(`${server.issuer}/account/sign-in`, { form: { email: account.email, password: account.password } });
    expect(forged.status).toBe(400);
    expect(forged.headers.getSetCookie().some((value) => value.startsWith('idp.account='))).toBe(false);
  });

  it('signs out, ending the session on the server', async () => {
    const { agent, page } = await signedIn();
    const out = await postForm(agent, server.issuer, page, '/account/sign-out');
    expect(out.status).toBe(303);
    expect((await agent.request(`${server.issuer}/account`)).status).toBe(303);
  });

  it('serves personal pages uncached, with a CSRF token in every form and no inline script', async () => {
    const { agent } = await signedIn();
    for (const path of ['/account', '/account/password', '/account/services', '/account/activity', '/account/data', '/account/delete']) {
      const page = await agent.request(`${server.issuer}${path}`);
      expect(page.status, path).toBe(200);
      expect(page.headers.get('cache-control'), path).toBe('no-store');
      expect(page.headers.get('content-security-policy'), path).not.toContain('unsafe-inline');
      const forms = page.body.match(/<form /g)?.length ?? 0;
      const tokens = page.body.match(/name="_csrf"/g)?.length ?? 0;
      expect(tokens, path).toBe(forms);
      expect(page.body, path).not.toMatch(/<script|style=/);
    }
  });
});

describe('account pages: profile and email', () => {
  it('edits only name, given name, family name and locale', async () => {
    const { account, agent, page } = await signedIn();
    const saved = await postForm(agent, server.issuer, page, '/account/profile', {
      name: 'Renamed Person',
      givenName: 'Renamed',
      familyName: '',
      locale: 'ja',
      email: 'hijack@example.test',
      emailVerified: 'true',
    });
    expect(saved.status).toBe(303);
    expect(saved.location).toBe(`${server.issuer}/account?done=profile-saved`);
    const after = (await findAccountById(server.db, account.id))!;
    expect(after).toMatchObject({ name: 'Renamed Person', givenName: 'Renamed', familyName: null, locale: 'ja', email: account.email });
    expect(after.updatedAt.getTime()).toBeGreaterThan(account.updatedAt.getTime());
    const shown = await agent.request(saved.location!);
    // The account's locale now picks the page language.
    expect(shown.body).toContain('<html lang="ja">');
    expect(shown.body).toContain('登録情報を保存しました。');
  });

  it('keeps a time zone the person chooses, shows every date in it, and releases it as zoneinfo', async () => {
    const { account, agent, page } = await signedIn();
    expect(page.body).toMatch(/<option value="" selected>From your language \(UTC\)<\/option>/);
    expect(page.body).toContain('<option value="Asia/Tokyo">Asia/Tokyo — Japan Standard Time</option>');
    const refused = await postForm(agent, server.issuer, page, '/account/profile', { name: 'X', zoneinfo: 'Mars/Olympus_Mons' });
    expect(refused.status).toBe(400);
    expect(errorText(refused)).toBe('Choose a time zone from the list.');
    expect((await findAccountById(server.db, account.id))!.zoneinfo).toBeNull();

    const service = await connectService(server, new UserAgent(), account, { port: 9811 });
    const before = await agent.request(`${server.issuer}/account/services`);
    expect(before.body).toMatch(/<dt>Connected<\/dt>\s*<dd><time datetime="[^"]+">[^<]+ UTC<\/time>/);
    const saved = await postForm(agent, server.issuer, page, '/account/profile', { name: account.name!, zoneinfo: 'Asia/Tokyo' });
    expect(saved.status).toBe(303);
    expect((await findAccountById(server.db, account.id))!.zoneinfo).toBe('Asia/Tokyo');
    // The same instant, shown in Tokyo's time (GMT+9 in English).
    const after = await agent.request(`${server.issuer}/account/services`);
    const [, iso, shown] = /<dt>Connected<\/dt>\s*<dd><time datetime="([^"]+)">([^<]+)<\/time>/.exec(after.body)!;
    const tokyo = new Intl.DateTimeFormat('en-GB', { timeStyle: 'short', timeZone: 'Asia/Tokyo' }).format(new Date(iso!));
    expect(shown).toContain(tokyo);
    expect(shown).toMatch(/ GMT\+9$/);

    const refreshed = await oidc.refreshTokenGrant(service.config, service.tokens.refresh_token!);
    expect(await oidc.fetchUserInfo(service.config, refreshed.access_token, refreshed.claims()!.sub)).toMatchObject({
      zoneinfo: 'Asia/Tokyo',
    });
  });

  it('re-renders the form with a message on invalid input and changes nothing', async () => {
    const { account, agent, page } = await signedIn();
    const badLocale = await postForm(agent, server.issuer, page, '/account/profile', { name: 'X', locale: 'not a locale!' });
    expect(badLocale.status).toBe(400);
    expect(errorText(badLocale)).toBe('Choose a language from the list.');
    expect(badLocale.body).toMatch(/id="locale" name="locale" aria-invalid="true"/);
    const tooLong = await postForm(agent, server.issuer, page, '/account/profile', { givenName: 'x'.repeat(101) });
    expect(tooLong.status).toBe(400);
    expect(errorText(tooLong)).toBe('Use at most 100 characters.');
    const malformed = await agent.request(`${server.issuer}/account/profile`, {
      form: { _csrf: hiddenField(page.body, '_csrf'), name: 'y'.repeat(5000) },
    });
    expect(malformed.status).toBe(400);
    const forged = await agent.request(`${server.issuer}/account/profile`, { form: { name: 'Forged' } });
    expect(forged.status).toBe(400);
    expect((await findAccountById(server.db, account.id))!.name).toBe(account.name);
  });

  it('changes the email address only once the new address is confirmed, and tells the old one', async () => {
    const { account, agent, page } = await signedIn();
    const newEmail = uniqueEmail('moved');
    const requested = await postForm(agent, server.issuer, page, '/account/email', { newEmail, password: account.password });
    expect(requested.status).toBe(303);
    const shown = await agent.request(requested.location!);
    expect(shown.body).toContain('We have sent a link to the new address');
    expect(shown.body).toContain(`Waiting for you to confirm ${newEmail}`);
    expect((await findAccountById(server.db, account.id))!.email).toBe(account.email);

    const link = linkIn((await latestMail(server.db, newEmail, 'change_email')).body);
    expect(link).toMatch(new RegExp(`^${server.issuer}/email/change\\?token=`));
    const done = await openConfirmation(new UserAgent(), link);
    expect(done.status).toBe(200);
    expect(done.body).toContain(newEmail);
    const after = (await findAccountById(server.db, account.id))!;
    expect(after).toMatchObject({ email: newEmail, emailVerified: true });
    expect(await outboxFor(server.db, account.email, 'email_changed')).toHaveLength(1);
    expect(await authenticate(server.db, newEmail, account.password)).toBeDefined();
    // Spent.
    expect((await new UserAgent().request(link)).status).toBe(410);
  });

  it('answers a change to an address that has an account exactly like any other, and tells that address instead', async () => {
    const other = await createTestAccount(server.db);
    const { account, agent, page } = await signedIn();
    const free = uniqueEmail('free');
    const toFree = await agent.request(
      (await postForm(agent, server.issuer, page, '/account/email', { newEmail: free, password: account.password })).location!,
    );
    const toTaken = await agent.request(
      (await postForm(agent, server.issuer, page, '/account/email', { newEmail: other.email.toUpperCase(), password: account.password }))
        .location!,
    );
    const normalise = (body: string) =>
      body
        .replace(/name="_csrf" value="[^"]*"/g, '')
        .replace(free, 'X')
        .replace(other.email.toUpperCase(), 'X');
    expect(normalise(toTaken.body)).toBe(normalise(toFree.body));
    expect(await outboxFor(server.db, other.email, 'change_to_existing')).toHaveLength(1);
    expect(await outboxFor(server.db, other.email, 'change_email')).toHaveLength(0);
    expect((await findAccountById(server.db, account.id))!.email).toBe(account.email);
  });

  it('rejects a change to an address taken between the request and the confirmation', async () => {
    const { account, agent, page } = await signedIn();
    const newEmail = uniqueEmail('race');
    await postForm(agent, server.issuer, page, '/account/email', { newEmail, password: account.password });
    const link = linkIn((await latestMail(server.db, newEmail, 'change_email')).body);
    await createTestAccount(server.db, { email: newEmail });
    const done = await openConfirmation(new UserAgent(), link);
    expect(done.status).toBe(409);
    expect(done.body).toContain('Nothing has been changed');
    expect((await findAccountById(server.db, account.id))!.email).toBe(account.email);
  });

  it('re-renders the email form for an invalid or unchanged address', async () => {
    const { account, agent, page } = await signedIn();
    const invalid = await postForm(agent, server.issuer, page, '/account/email', { newEmail: 'nope', password: account.password });
    expect(invalid.status).toBe(400);
    expect(invalid.body).toContain('Enter a valid email address.');
    const same = await postForm(agent, server.issuer, page, '/account/email', {
      newEmail: account.email.toUpperCase(),
      password: account.password,
    });
    expect(same.status).toBe(400);
    expect(same.body).toContain('That is already your email address.');
  });
});

describe('account pages: password', () => {
  it('needs the current password, then signs out every other session and revokes refresh tokens', async () => {
    const { account, agent, page } = await signedIn();
    const service = await connectService(server, new UserAgent(), account, { port: 9801 });
    const otherDevice = new UserAgent();
    await signInToAccountPages(otherDevice, server.issuer, account.email, account.password);
    const form = await agent.request(`${server.issuer}/account/password`);

    const wrong = await postForm(agent, server.issuer, form, '/account/password', {
      currentPassword: 'wrong',
      newPassword: 'a new passphrase',
    });
    expect(wrong.status).toBe(400);
    expect(errorText(wrong)).toBe('Your current password is not correct.');
    const weak = await postForm(agent, server.issuer, form, '/account/password', {
      currentPassword: account.password,
      newPassword: 'short',
    });
    expect(weak.status).toBe(400);
    expect(errorText(weak)).toBe('Use at least 8 characters for your password.');
    expect(await authenticate(server.db, account.email, account.password)).toBeDefined();

    const changed = await postForm(agent, server.issuer, page, '/account/password', {
      currentPassword: account.password,
      newPassword: 'a new passphrase',
    });
    expect(changed.status).toBe(303);
    expect(await authenticate(server.db, account.email, 'a new passphrase')).toBeDefined();
    expect((await agent.request(`${server.issuer}/account`)).status).toBe(200); // this page stays signed in
    expect((await otherDevice.request(`${server.issuer}/account`)).status).toBe(303); // the other one does not
    expect((await artefactCounts(server.db, account.id))['Session'] ?? 0).toBe(0);
    await expect(oidc.refreshTokenGrant(service.config, service.tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
  });
});

describe('account pages: connected services', () => {
  it('lists each service with what it receives in plain words and when it was used', async () => {
    const account = await createTestAccount(server.db);
    const browser = new UserAgent();
    await connectService(server, browser, account, { port: 9802, scope: 'openid email', name: 'Travel Desk' });
    const agent = new UserAgent();
    await signInToAccountPages(agent, server.issuer, account.email, account.password);
    const page = await agent.request(`${server.issuer}/account/services`);
    expect(page.body).toContain('<h2>Travel Desk</h2>');
    expect(page.body).toContain('Your email address and whether it has been verified');
    expect(page.body).toContain('An identifier for you that only this service uses');
    expect(page.body).not.toContain('Your name (full, given and family name)');
    expect(page.body).toMatch(/<dt>Connected<\/dt>\s*<dd><time datetime="[^"]+">[^<]+ UTC<\/time>/);
    expect(page.body).toMatch(/<dt>Last used<\/dt>\s*<dd><time datetime="[^"]+">[^<]+ UTC<\/time>/);
    expect(page.body).toContain('Disconnect Travel Desk');
  });

  it('shows when a service was last used right after it was disconnected and connected again', async () => {
    const account = await createTestAccount(server.db);
    const browser = new UserAgent();
    const service = await connectService(server, browser, account, { port: 9806, name: 'Comeback Service' });
    const agent = new UserAgent();
    await signInToAccountPages(agent, server.issuer, account.email, account.password);
    const listed = await agent.request(`${server.issuer}/account/services`);
    await postForm(agent, server.issuer, listed, '/account/services/revoke', { clientId: service.registered.client.clientId });

    // Within the same minute, the person signs in to the service again and allows it.
    const redirectUri = service.registered.client.redirectUris[0]!;
    const again = await startAuthorization(service.config, redirectUri, 'openid');
    await completeAuthorization(browser, `${again.url.href}&prompt=consent`, redirectUri, { ...account, consent: 'allow' });

    // The use is written after the response to the service (never in its way): a loaded
    // machine may show the page before it lands.
    const servicesPage = async () => (await agent.request(`${server.issuer}/account/services`)).body;
    await expect.poll(servicesPage).toMatch(/Last used<\/dt>\s*<dd><time datetime=/);
    const page = await servicesPage();
    expect(page).toContain('Comeback Service');
    expect(page).not.toContain('Not yet');
  });

  it('revokes a service: its grant and tokens go, and it gets a back-channel logout', async () => {
    const account = await createTestAccount(server.db);
    const backchannel = await listener();
    const browser = new UserAgent();
    const kept = await connectService(server, browser, account, { port: 9803 });
    const revoked = await connectService(server, browser, account, { port: 9804, backchannelLogoutUri: backchannel.url });
    const agent = new UserAgent();
    const page = await signInToAccountPages(agent, server.issuer, account.email, account.password);
    const services = await agent.request(`${server.issuer}/account/services`);

    const done = await postForm(agent, server.issuer, services, '/account/services/revoke', {
      clientId: revoked.registered.client.clientId,
    });
    expect(done.status).toBe(303);
    expect((await agent.request(done.location!)).body).toContain('The service has been disconnected.');

    const { rows } = await server.db.query<{ model: string }>('SELECT model FROM oidc_payloads WHERE account_id = $1 AND client_id = $2', [
      account.id,
      revoked.registered.client.clientId,
    ]);
    expect(rows.map((row) => row.model)).toEqual([]);
    await expect(oidc.refreshTokenGrant(revoked.config, revoked.tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    expect((await oidc.tokenIntrospection(revoked.config, revoked.tokens.access_token)).active).toBe(false);
    // The other service keeps working.
    expect((await oidc.tokenIntrospection(kept.config, kept.tokens.access_token)).active).toBe(true);

    await waitFor(() => backchannel.tokens.length > 0);
    const [, payload] = backchannel.tokens[0]!.split('.');
    const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString()) as Record<string, unknown>;
    expect(claims['aud']).toBe(revoked.registered.client.clientId);
    expect(claims['events']).toHaveProperty(['http://schemas.openid.net/event/backchannel-logout']);

    const audit = await server.db.query('SELECT 1 FROM audit_events WHERE event = $1 AND actor = $2 AND client_id = $3', [
      'grant.revoked',
      account.id,
      revoked.registered.client.clientId,
    ]);
    expect(audit.rowCount).toBe(1);
    // A service that is not connected cannot be "revoked" into anything.
    const stray = await postForm(agent, server.issuer, page, '/account/services/revoke', { clientId: 'nope' });
    expect(stray.status).toBe(303);
  });
});

describe('account pages: activity and data', () => {
  it('lists recent sign-ins with the service and coarse browser facts, never an IP address', async () => {
    const account = await createTestAccount(server.db);
    const browser = new UserAgent();
    const page = await browser.follow(`${server.issuer}/account/sign-in`, 'x:');
    if ('stoppedAt' in page) throw new Error('unexpected');
    await browser.request(`${server.issuer}/account/sign-in`, {
      form: { _csrf: hiddenField(page.body, '_csrf'), email: account.email, password: account.password },
      headers: { 'user-agent': chromeOnLinux },
    });
    await connectService(server, new UserAgent(), account, { port: 9805, name: 'Book Club' });
    const activity = await browser.request(`${server.issuer}/account/activity`);
    expect(activity.body).toContain('Chrome on Linux');
    expect(activity.body).toContain('This account page');
    expect(activity.body).toContain('Book Club');
    expect(activity.body).not.toMatch(/127\.0\.0\.1|::1/);
  });

  it('exports everything held about the account as a JSON download, without secrets', async () => {
    const account = await createTestAccount(server.db);
    const service = await connectService(server, new UserAgent(), account, { port: 9806 });
    const agent = new UserAgent();
    const page = await signInToAccountPages(agent, server.issuer, account.email, account.password);
    const data = await agent.request(`${server.issuer}/account/data`);
    const download = await postForm(agent, server.issuer, data, '/account/data/export');
    expect(download.status).toBe(200);
    expect(download.headers.get('content-type')).toContain('application/json');
    expect(download.headers.get('content-disposition')).toContain('attachment');
    expect(download.headers.get('cache-control')).toBe('no-store');
    const exported = JSON.parse(download.body);
    expect(exported.account).toMatchObject({ id: account.id, email: account.email, name: account.name });
    expect(exported.connectedServices).toEqual([
      expect.objectContaining({ clientId: service.registered.client.clientId, receives: expect.arrayContaining(['email', 'name']) }),
    ]);
    expect(exported.signInSessions).toHaveLength(1);
    expect(exported.liveTokens.map((token: { kind: string }) => token.kind)).toEqual(
      expect.arrayContaining(['AccessToken', 'RefreshToken']),
    );
    expect(exported.securityEvents.map((event: { event: string }) => event.event)).toEqual(expect.arrayContaining(['sign_in', 'consent']));
    expect(download.body).not.toContain('argon2');
    expect(download.body).not.toContain(service.tokens.access_token);
    expect(download.body).not.toContain(service.tokens.refresh_token!);
    expect(download.body).not.toContain(account.password);
    expect(page.status).toBe(200);
  });
});

describe('account pages: deleting the account', () => {
  it('needs the password and a confirmation, and re-renders with a message otherwise', async () => {
    const { account, agent } = await signedIn();
    const form = await agent.request(`${server.issuer}/account/delete`);
    const wrong = await postForm(agent, server.issuer, form, '/account/delete', { password: 'wrong', confirm: 'yes' });
    expect(wrong.status).toBe(400);
    expect(errorText(wrong)).toBe('Your current password is not correct.');
    const unconfirmed = await postForm(agent, server.issuer, form, '/account/delete', { password: account.password });
    expect(unconfirmed.status).toBe(400);
    expect(errorText(unconfirmed)).toBe('Tick the box to confirm that you want to delete your account.');
    expect(await findAccountById(server.db, account.id)).toBeDefined();
  });

  it('deletes the account with its grants, tokens and sessions, tells every connected service, and keeps no personal data', async () => {
    const account = await createTestAccount(server.db, { emailVerified: false });
    const first = await listener();
    const second = await listener();
    const browser = new UserAgent();
    const one = await connectService(server, browser, account, { port: 9807, backchannelLogoutUri: first.url });
    const two = await connectService(server, browser, account, { port: 9808, backchannelLogoutUri: second.url });
    const agent = new UserAgent();
    await signInToAccountPages(agent, server.issuer, account.email, account.password);
    // Leave rows in every table that holds something of the account.
    const resend = await agent.request(`${server.issuer}/account`);
    await postForm(agent, server.issuer, resend, '/account/email/resend');
    expect(await outboxFor(server.db, account.email)).not.toHaveLength(0);
    const counts = await artefactCounts(server.db, account.id);
    expect(counts).toMatchObject({ Session: 1, Grant: 2, AccessToken: 2, RefreshToken: 2 });

    const form = await agent.request(`${server.issuer}/account/delete`);
    const deleted = await postForm(agent, server.issuer, form, '/account/delete', { password: account.password, confirm: 'yes' });
    // The goodbye page is the answer itself: which services were told is known only then.
    expect(deleted.status).toBe(200);
    expect(deleted.headers.getSetCookie().some((value) => value.startsWith('idp.account=;'))).toBe(true);
    expect(deleted.body).toContain('Your account has been deleted');
    expect(deleted.body).toContain('None of the services you used has asked to be told of deletions');

    expect(await findAccountById(server.db, account.id)).toBeUndefined();
    for (const [table, column] of [
      ['oidc_payloads', 'account_id'],
      ['account_tokens', 'account_id'],
      ['account_sessions', 'account_id'],
      ['outbox', 'account_id'],
      ['service_usage', 'account_id'],
    ] as const) {
      const { rowCount } = await server.db.query(`SELECT 1 FROM ${table} WHERE ${column} = $1`, [account.id]);
      expect(rowCount, table).toBe(0);
    }
    expect(await outboxFor(server.db, account.email)).toHaveLength(0);
    const audit = await server.db.query<{ event: string; details: Record<string, unknown> }>(
      'SELECT event, details FROM audit_events WHERE actor = $1 ORDER BY id',
      [account.id],
    );
    expect(audit.rows.map((row) => row.event)).toContain('account.deleted');
    const remaining = JSON.stringify(audit.rows);
    expect(remaining).not.toContain(account.email);
    expect(remaining).not.toContain(account.name!);
    expect(remaining).not.toContain('Linux');

    await expect(oidc.refreshTokenGrant(one.config, one.tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    await expect(oidc.refreshTokenGrant(two.config, two.tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    // Both services hear that the person has left.
    await waitFor(() => first.tokens.length > 0 && second.tokens.length > 0);
    expect((await agent.request(`${server.issuer}/account`)).status).toBe(303);
  });
});
