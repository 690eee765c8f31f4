import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issueChallenge } from '../../src/factors/challenges.js';
import { translator } from '../../src/i18n/catalogue.js';
import { createTestAccount, createTestClient } from '../helpers/fixtures.js';
import { latestMail, outboxFor, signInToAccountPages } from '../helpers/self-service.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { SoftwareAuthenticator, type Bend } from '../helpers/software-authenticator.js';
import {
  addPasskeyOnSecurityPage,
  idTokenClaimsOf,
  passkeyActionIn,
  passkeyOptionsIn,
  recoveryCodesIn,
  signInAtService,
  submit,
  unescapeHtml,
} from '../helpers/strong-sign-in.js';
import { UserAgent } from '../helpers/user-agent.js';

const t = translator('en');
let server: TestServer;

beforeAll(async () => {
  server = await startTestServer({ hostName: 'localhost' });
});
afterAll(() => server?.close());

async function passkeyRows(accountId: string) {
  const { rows } = await server.db.query<{
    counter: string;
    backed_up: boolean;
    device_type: string;
    last_used_at: Date | null;
    name: string;
  }>('SELECT counter, backed_up, device_type, last_used_at, name FROM passkeys WHERE account_id = $1', [accountId]);
  return rows;
}

/** A person signed in to the account pages with one passkey on the software authenticator. */
async function personWithPasskey(options: { synced?: boolean } = {}) {
  const account = await createTestAccount(server.db);
  const agent = new UserAgent();
  await signInToAccountPages(agent, server.issuer, account.email, account.password);
  const authenticator = new SoftwareAuthenticator(server.issuer, options);
  const added = await addPasskeyOnSecurityPage(agent, server, authenticator, 'Laptop');
  return { account, agent, authenticator, added };
}

describe('passkeys', () => {
  it('are added on the Security page with a random user handle; the first comes with ten recovery codes and a mail', async () => {
    const { account, agent, added } = await personWithPasskey();
    expect(added.status).toBe(200);
    expect(recoveryCodesIn(added.body)).toHaveLength(10);
    expect((await latestMail(server.db, account.email, 'factor_added')).body).toContain('Laptop');

    const page = await agent.request(`${server.issuer}/account/security`);
    expect(page.body).toContain('Laptop');
    const { user, rp } = passkeyOptionsIn(page.body, 'register');
    expect(rp.id).toBe('localhost');
    const { rows } = await server.db.query<{ webauthn_user_id: string }>('SELECT webauthn_user_id FROM accounts WHERE id = $1', [
      account.id,
    ]);
    expect(user.id).toBe(rows[0]!.webauthn_user_id);
    expect(Buffer.from(user.id, 'base64url')).toHaveLength(32);
    for (const identifier of [account.id, account.email])
      expect(Buffer.from(user.id, 'base64url').toString('utf8')).not.toContain(identifier);
    expect(await passkeyRows(account.id)).toMatchObject([{ name: 'Laptop', device_type: 'singleDevice', backed_up: false, counter: '0' }]);
  });

  it('sign a person in to a service alone: no password, no second step; amr hwk with mfa, acr phr', async () => {
    const { account, authenticator } = await personWithPasskey();
    const registered = await createTestClient(server.db, server.validator);
    const result = await signInAtService(new UserAgent(), server, registered, { passkey: authenticator, passkeyFirst: true });
    expect(result.pages).toEqual(['login', 'consent']);
    const claims = await idTokenClaimsOf(server, registered, result.callback!);
    expect(claims.amr).toEqual(['hwk', 'mfa']);
    expect(claims.acr).toBe('phr');
    const [row] = await passkeyRows(account.id);
    expect(row!.counter).toBe('1');
    expect(row!.last_used_at).not.toBeNull();
  });

  it('report a synced passkey as swk and store its backup state', async () => {
    const { account, authenticator } = await personWithPasskey({ synced: true });
    expect(await passkeyRows(account.id)).toMatchObject([{ device_type: 'multiDevice', backed_up: true }]);
    const registered = await createTestClient(server.db, server.validator);
    const result = await signInAtService(new UserAgent(), server, registered, { passkey: authenticator, passkeyFirst: true });
    expect((await idTokenClaimsOf(server, registered, result.callback!)).amr).toEqual(['swk', 'mfa']);
  });

  it('are the second step after a password; a service that asks for two factors is told its own level', async () => {
    const { account, authenticator } = await personWithPasskey();
    const registered = await createTestClient(server.db, server.validator);
    const answers = { email: account.email, password: account.password, passkey: authenticator };
    const result = await signInAtService(new UserAgent(), server, registered, answers, { acr_values: 'urn:group-idp:acr:2fa' });
    expect(result.pages).toEqual(['login', 'second-step', 'consent']);
    const claims = await idTokenClaimsOf(server, registered, result.callback!);
    expect(claims.amr).toEqual(['pwd', 'hwk', 'mfa']);
    // A passkey is more than two factors ask for; the answer is the level that was asked (OIDC Core 5.5.1.1).
    expect(claims.acr).toBe('urn:group-idp:acr:2fa');
  });

  it('are renamed, and removed (the last one with a password, and a mail); a removed passkey no longer signs in', async () => {
    const { account, agent, authenticator } = await personWithPasskey();
    let page = await agent.request(`${server.issuer}/account/security`);
    const [credentialId] = [...page.body.matchAll(/name="passkey" value="([^"]+)"/g)].map((match) => unescapeHtml(match[1]!));
    const renamed = await submit(agent, server, page, '/account/security/passkeys/rename', {
      passkey: credentialId!,
      name: '  Phone\u0007 ',
    });
    expect(renamed.status).toBe(303);
    expect(await passkeyRows(account.id)).toMatchObject([{ name: 'Phone' }]);

    page = await agent.request(`${server.issuer}/account/security`);
    const withoutPassword = await submit(agent, server, page, '/account/security/passkeys/remove', { passkey: credentialId! });
    expect(withoutPassword.status).toBe(400);
    expect(withoutPassword.body).toContain(t('security.error.passwordNeeded'));
    const wrongPassword = await submit(agent, server, page, '/account/security/passkeys/remove', {
      passkey: credentialId!,
      password: 'nope',
    });
    expect(wrongPassword.status).toBe(400);
    expect(await passkeyRows(account.id)).toHaveLength(1);
    const removed = await submit(agent, server, page, '/account/security/passkeys/remove', {
      passkey: credentialId!,
      password: account.password,
    });
    expect(removed.status).toBe(303);
    expect(await passkeyRows(account.id)).toHaveLength(0);
    expect((await latestMail(server.db, account.email, 'factor_removed')).body).toContain('Phone');
    const { rows } = await server.db.query('SELECT 1 FROM recovery_codes WHERE account_id = $1', [account.id]);
    expect(rows).toHaveLength(0);

    const registered = await createTestClient(server.db, server.validator);
    const result = await signInAtService(new UserAgent(), server, registered, { passkey: authenticator, passkeyFirst: true });
    expect(result.callback).toBeUndefined();
    expect(result.page!.status).toBe(400);
    expect(result.page!.body).toContain(t('passkey.error.invalid'));
  });
});

describe('the offer to set a factor up', () => {
  it('is no way around the second step: an account whose passkey can answer cannot add an authenticator app instead', async () => {
    const { account } = await personWithPasskey();
    const registered = await createTestClient(server.db, server.validator, { requireAcr: 'urn:group-idp:acr:2fa' });
    const agent = new UserAgent();
    const atSecondStep = await signInAtService(agent, server, registered, { email: account.email, password: account.password });
    expect(atSecondStep.page!.body).toContain('data-passkey="authenticate"');
    const base = new URL(atSecondStep.page!.url).pathname.replace(/\/second-step$/, '');
    const offer = await agent.request(`${server.issuer}${base}/setup/authenticator`);
    expect(offer.status).toBe(400);
    expect(offer.body).not.toContain('totp-secret');
    const csrf = /name="_csrf" value="([^"]+)"/.exec(atSecondStep.page!.body)![1]!;
    for (const [step, form] of [
      ['setup/authenticator', { _csrf: csrf, code: '123456' }],
      ['setup/done', { _csrf: csrf }],
    ] as const) {
      const response = await agent.request(`${server.issuer}${base}/${step}`, { form });
      expect(response.status, step).toBe(400);
      expect(response.location, step).toBeUndefined();
    }
    const { rows } = await server.db.query(
      'SELECT 1 FROM totp_enrolments WHERE account_id = $1 UNION ALL SELECT 1 FROM totp_factors WHERE account_id = $1',
      [account.id],
    );
    expect(rows).toHaveLength(0);
  });
});

describe('passkey answers that do not verify', () => {
  it('refuse a registration for another origin or RP id, without user verification, malformed, or replayed: a message, nothing stored', async () => {
    const account = await createTestAccount(server.db);
    const agent = new UserAgent();
    await signInToAccountPages(agent, server.issuer, account.email, account.password);
    const authenticator = new SoftwareAuthenticator(server.issuer);
    const page = await agent.request(`${server.issuer}/account/security`);
    const options = passkeyOptionsIn(page.body, 'register');
    const post = (credential: unknown) =>
      submit(agent, server, page, '/account/security/passkeys', {
        credential: typeof credential === 'string' ? credential : JSON.stringify(credential),
      });

    const refusals: [string, unknown, string][] = [
      ['another origin', authenticator.register(options, { origin: 'https://evil.example' }), t('passkey.error.invalid')],
      ['another RP id', authenticator.register(options, { rpId: 'evil.example' }), t('passkey.error.invalid')],
      ['no user verification', authenticator.register(options, { unverified: true }), t('passkey.error.invalid')],
      ['another challenge', authenticator.register(options, { challenge: 'A'.repeat(48) }), t('passkey.error.expired')],
      [
        'a broken attestation object',
        {
          ...authenticator.register(options),
          response: { ...authenticator.register(options).response, attestationObject: 'oWNmbXRkbm9uZQ' },
        },
        t('passkey.error.invalid'),
      ],
      ['not JSON', '{"id": ', t('passkey.error.malformed')],
      ['the wrong shape', { id: 'x' }, t('passkey.error.malformed')],
    ];
    for (const [what, credential, message] of refusals) {
      const response = await post(credential);
      expect(response.status, what).toBe(400);
      expect(response.body, what).toContain(message);
    }
    expect(await passkeyRows(account.id)).toHaveLength(0);
    expect(await outboxFor(server.db, account.email, 'factor_added')).toHaveLength(0);

    const good = authenticator.register(options);
    expect((await post(good)).status).toBe(200);
    const replayed = await post(good);
    expect(replayed.status).toBe(400);
    expect(replayed.body).toContain(t('passkey.error.replayed'));
    expect(await passkeyRows(account.id)).toHaveLength(1);
  });

  it('refuse an assertion for another origin or RP id, unverified, unknown, of another user, expired, replayed or counted back', async () => {
    const { authenticator } = await personWithPasskey();
    const other = await personWithPasskey();
    const registered = await createTestClient(server.db, server.validator);
    const otherHandle = passkeyOptionsIn((await other.agent.request(`${server.issuer}/account/security`)).body, 'register').user.id;

    const raceUrl = () =>
      `${server.issuer}/auth?${new URLSearchParams({
        client_id: registered.client.clientId,
        redirect_uri: registered.client.redirectUris[0]!,
        response_type: 'code',
        scope: 'openid',
        code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
        code_challenge_method: 'S256',
      })}`;
    async function attempt(bend: Bend | ((options: { challenge: string }, uid: string) => Bend)) {
      const agent = new UserAgent();
      const page = await agent.follow(raceUrl(), registered.client.redirectUris[0]!);
      if ('stoppedAt' in page) throw new Error('no sign-in page');
      const options = passkeyOptionsIn(page.body, 'authenticate');
      const uid = new URL(page.url).pathname.split('/')[2]!;
      const credential = authenticator.authenticate(options, typeof bend === 'function' ? bend(options, uid) : bend);
      const response = await agent.request(new URL(passkeyActionIn(page.body, 'authenticate'), server.issuer).href, {
        form: { _csrf: /name="_csrf" value="([^"]+)"/.exec(page.body)![1]!, credential: JSON.stringify(credential) },
      });
      return { response, credential, agent, page };
    }

    const expiredChallenge = (_options: { challenge: string }, uid: string): Bend => ({
      challenge: issueChallenge(
        { cookieKeys: () => server.provider.keys as string[] },
        `sign-in\u0000interaction:${uid}`,
        600,
        Date.now() - 601_000,
      ),
    });
    const refusals: [string, Bend | ((options: { challenge: string }, uid: string) => Bend), string][] = [
      ['another origin', { origin: 'https://evil.example' }, t('passkey.error.invalid')],
      ['another RP id', { rpId: 'evil.example' }, t('passkey.error.invalid')],
      ['no user verification', { unverified: true }, t('passkey.error.invalid')],
      ['another user handle', { userHandle: otherHandle }, t('passkey.error.invalid')],
      ['an expired challenge', expiredChallenge, t('passkey.error.expired')],
      ['a challenge of another sign-in', { challenge: 'B'.repeat(48) }, t('passkey.error.expired')],
    ];
    for (const [what, bend, message] of refusals) {
      const { response } = await attempt(bend);
      expect(response.status, what).toBe(400);
      expect(response.body, what).toContain(message);
      expect(
        response.headers.getSetCookie().some((cookie) => cookie.startsWith('_session=')),
        what,
      ).toBe(false);
    }

    // The same answer presented twice at once (a double submit, or a stolen answer raced in):
    // one signs in, the other is refused, since the challenge is spent. Synced passkeys report
    // a signature counter of 0 every time, so only the challenge stops this.
    const racer = new UserAgent();
    const racePage = await racer.follow(raceUrl(), registered.client.redirectUris[0]!);
    if ('stoppedAt' in racePage) throw new Error('no sign-in page');
    const answer = JSON.stringify(authenticator.authenticate(passkeyOptionsIn(racePage.body, 'authenticate'), { counter: 0 }));
    const post = () =>
      racer.request(new URL(passkeyActionIn(racePage.body, 'authenticate'), server.issuer).href, {
        form: { _csrf: /name="_csrf" value="([^"]+)"/.exec(racePage.body)![1]!, credential: answer },
      });
    const statuses = (await Promise.all([post(), post()])).map((response) => response.status).sort();
    expect(statuses).toEqual([303, 400]);
    await attempt({ counter: 5 });

    // A signature counter that goes back means a cloned authenticator.
    const { response: cloned } = await attempt({ counter: 1 });
    expect(cloned.status).toBe(400);
    expect(cloned.body).toContain(t('passkey.error.invalid'));
  });

  it('are not offered on a server whose issuer is an IP address (browsers refuse IP RP ids)', async () => {
    const ipServer = await startTestServer();
    try {
      const account = await createTestAccount(ipServer.db);
      const agent = new UserAgent();
      const signIn = await agent.request(`${ipServer.issuer}/account/sign-in`);
      expect(signIn.body).not.toContain('data-passkey');
      await signInToAccountPages(agent, ipServer.issuer, account.email, account.password);
      const page = await agent.request(`${ipServer.issuer}/account/security`);
      expect(page.body).not.toContain('data-passkey="register"');
      expect(page.body).toContain(t('security.passkeys.unavailable'));
    } finally {
      await ipServer.close();
    }
  });
});
