import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { translator } from '../../src/i18n/catalogue.js';
import { createTestAccount } from '../helpers/fixtures.js';
import { LogoutListener, waitFor } from '../helpers/listener.js';
import { artefactCounts, connectService, signInToAccountPages } from '../helpers/self-service.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { submit } from '../helpers/strong-sign-in.js';
import { UserAgent } from '../helpers/user-agent.js';

/*
 * The Security page's list of sessions over HTTP: what it says about each browser (from
 * bowser: browser and system, no versions; the network, never the address), and signing one
 * out, which ends it and sends its services their back-channel logout.
 */

const t = translator('en');
let server: TestServer;
let backchannel: LogoutListener;

const firefoxOnMac = 'Mozilla/5.0 (Macintosh; Intel Mac OS X 14.5; rv:128.0) Gecko/20100101 Firefox/128.0';
const safariOnIphone =
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1';

beforeAll(async () => {
  server = await startTestServer({ env: { TRUST_PROXY: 'true' } });
  backchannel = await new LogoutListener().start();
});
afterAll(async () => {
  await backchannel?.stop();
  await server?.close();
});

const sessionItems = (html: string) => [...html.matchAll(/<li class="session">([\s\S]*?)<\/li>/g)].map((match) => match[1]!);

describe('the Security page lists every session', () => {
  it('with browser, system and network prefix (never the address), marking this browser; one is signed out and its service told', async () => {
    const account = await createTestAccount(server.db);
    const laptop = new UserAgent({ headers: { 'user-agent': firefoxOnMac, 'x-forwarded-for': '203.0.113.77' } });
    const phone = new UserAgent({ headers: { 'user-agent': safariOnIphone, 'x-forwarded-for': '2001:db8:abcd:12::9' } });
    const person = { email: account.email, password: account.password };
    const laptopService = await connectService(server, laptop, person, {
      port: 9701,
      backchannelLogoutUri: backchannel.url,
      name: 'Travel',
    });
    const phoneService = await connectService(server, phone, person, { port: 9702, backchannelLogoutUri: backchannel.url, name: 'Points' });

    await signInToAccountPages(laptop, server.issuer, account.email, account.password);
    const items = await waitFor(async () => {
      const found = sessionItems((await laptop.request(`${server.issuer}/account/security`)).body);
      return found.length === 3 && found.every((item) => !item.includes(t('activity.unknown'))) && found;
    });
    const [laptopItem, phoneItem, accountPageItem] = [
      items.find((item) => item.includes('Travel'))!,
      items.find((item) => item.includes('Points'))!,
      items.find((item) => item.includes(t('security.sessions.accountPage')))!,
    ];
    expect(laptopItem).toContain('Firefox on macOS');
    expect(laptopItem).toContain('203.0.113.0/24');
    expect(laptopItem).toContain(t('security.sessions.thisBrowser'));
    expect(phoneItem).toContain('Safari on iOS');
    expect(phoneItem).toContain('2001:db8:abcd::/48');
    expect(phoneItem).not.toContain(t('security.sessions.thisBrowser'));
    expect(accountPageItem).toContain(t('security.sessions.thisPage'));
    const page = await laptop.request(`${server.issuer}/account/security`);
    expect(page.body).not.toContain('203.0.113.77');
    expect(page.body).not.toContain('2001:db8:abcd:12::9');

    const phoneSid = decodeJwt(phoneService.tokens.id_token!)['sid'];
    const phoneSession = /name="session" value="([^"]+)"/.exec(phoneItem)![1]!;
    const before = backchannel.tokens.length;
    const ended = await submit(laptop, server, page, '/account/security/sessions/end', { session: phoneSession });
    expect(ended.status).toBe(303);
    const token = await waitFor(() => backchannel.tokens.slice(before).find((candidate) => decodeJwt(candidate)['sid'] === phoneSid));
    expect(decodeJwt(token)['aud']).toBe(phoneService.registered.client.clientId);
    const remaining = sessionItems((await laptop.request(`${server.issuer}/account/security`)).body);
    expect(remaining).toHaveLength(2);
    expect(remaining.join('')).not.toContain('Safari on iOS');
    expect(laptopService.tokens.id_token).toBeDefined();
  });

  it('refuses to sign out a session of another account, and ends other account-page sessions by their handle', async () => {
    const [mine, theirs] = await Promise.all([createTestAccount(server.db), createTestAccount(server.db)]);
    const myAgent = new UserAgent();
    const theirAgent = new UserAgent();
    await connectService(server, theirAgent, { email: theirs.email, password: theirs.password }, { port: 9703 });
    const { rows } = await server.db.query<{ uid: string }>(`SELECT uid FROM oidc_payloads WHERE model = 'Session' AND account_id = $1`, [
      theirs.id,
    ]);
    const page = await signInToAccountPages(myAgent, server.issuer, mine.email, mine.password);
    const refused = await submit(myAgent, server, page, '/account/security/sessions/end', { session: rows[0]!.uid });
    expect(refused.status).toBe(404);
    expect((await artefactCounts(server.db, theirs.id))['Session']).toBe(1);

    const otherTab = new UserAgent();
    await signInToAccountPages(otherTab, server.issuer, mine.email, mine.password);
    const security = await myAgent.request(`${server.issuer}/account/security`);
    const handles = [...security.body.matchAll(/name="account_session" value="([^"]+)"/g)].map((match) => match[1]!);
    expect(handles).toHaveLength(2);
    const thisPage = sessionItems(security.body).find((item) => item.includes(t('security.sessions.thisPage')))!;
    const otherHandle = handles.find((handle) => !thisPage.includes(handle))!;
    expect((await submit(myAgent, server, security, '/account/security/sessions/end', { account_session: otherHandle })).status).toBe(303);
    expect((await otherTab.request(`${server.issuer}/account/security`)).status).toBe(303);
    expect((await myAgent.request(`${server.issuer}/account/security`)).status).toBe(200);
  });
});
