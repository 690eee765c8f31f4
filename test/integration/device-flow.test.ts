import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deviceCodeGrant } from '../../src/clients/store.js';
import { storedId } from '../../src/oidc/adapter.js';
import { createTestAccount, createTestClient } from '../helpers/fixtures.js';
import { discoverClient } from '../helpers/oidc-client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { randomIp } from '../helpers/service-sign-in.js';
import { formActions, hiddenField, UserAgent, type PageResponse } from '../helpers/user-agent.js';

/*
 * Standards issue, item 7: device sign-in (RFC 8628) for TVs and consoles, end to end with
 * openid-client's device-flow functions and the hosted pages in both languages.
 */

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer({ env: { DEVICE_POLL_INTERVAL_SECONDS: '1', TRUST_PROXY: 'true', USER_CODE_FAILURES_PER_IP: '3' } });
});
afterAll(async () => {
  await server?.close();
});

async function tvApp(target: TestServer) {
  const registered = await createTestClient(target.db, target.validator, {
    name: 'Video on TV',
    public: true,
    redirectUris: [],
    grantTypes: [deviceCodeGrant, 'refresh_token'],
  });
  return discoverClient(target.issuer, registered.client.clientId, undefined);
}

const tvUserAgent = 'Mozilla/5.0 (Linux; Android 12; BRAVIA 4K VH2) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36';

/** The person, on a phone, enters the code and goes through confirmation, sign-in and consent. */
async function approveOnPhone(target: TestServer, userCode: string, person: { email: string; password: string }, language = 'en') {
  const phone = new UserAgent({ headers: { 'accept-language': language } });
  const shown: PageResponse[] = [];
  const entry = await phone.request(`${target.issuer}/device`);
  shown.push(entry);
  const confirmation = await phone.request(`${target.issuer}/device`, {
    form: { xsrf: hiddenField(entry.body, 'xsrf'), user_code: userCode.toLowerCase().replace('-', '') },
  });
  shown.push(confirmation);
  let next = await phone.follow(`${target.issuer}/device`, 'never', {
    form: { xsrf: hiddenField(confirmation.body, 'xsrf'), user_code: hiddenField(confirmation.body, 'user_code'), confirm: 'yes' },
  });
  for (let step = 0; step < 4 && !('stoppedAt' in next); step += 1) {
    const page = next as PageResponse;
    shown.push(page);
    const action = formActions(page.body).find((a) => a.endsWith('/login') || a.endsWith('/consent'));
    if (!action) break;
    const form: Record<string, string> = { _csrf: hiddenField(page.body, '_csrf') };
    if (action.endsWith('/login')) Object.assign(form, { email: person.email, password: person.password });
    next = await phone.follow(`${target.issuer}${action}`, 'never', { form });
  }
  return shown;
}

describe('device sign-in', () => {
  it('a TV gets tokens with openid-client once the person approves at /device; the pages name the service and the device', async () => {
    const config = await tvApp(server);
    const person = await createTestAccount(server.db);
    const started = await oidc.initiateDeviceAuthorization(config, { scope: 'openid email offline_access' });
    expect(started.verification_uri).toBe(`${server.issuer}/device`);
    expect(started.verification_uri_complete).toBe(`${server.issuer}/device?user_code=${encodeURIComponent(started.user_code)}`);
    expect(started.user_code).toMatch(/^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$/);
    expect(started.interval).toBe(1);

    const polling = oidc.pollDeviceAuthorizationGrant(config, started);
    const pages = await approveOnPhone(server, started.user_code, person);
    expect(pages[0]!.body).toContain('name="user_code"');
    expect(pages[1]!.body).toContain('Video on TV');
    expect(pages[1]!.body).toContain(started.user_code);
    expect(pages.at(-1)!.body).toContain('Your device is now signed in to Video on TV');

    const tokens = await polling;
    expect(tokens.claims()).toMatchObject({ email: person.email });
    expect(tokens.refresh_token).toEqual(expect.any(String));
  });

  it('names the device from what it said about itself, in Japanese too', async () => {
    const config = await tvApp(server);
    // The TV's own User-Agent, as its HTTP stack sends it.
    config[oidc.customFetch] = (url, options) =>
      fetch(url, { ...options, headers: { ...Object.fromEntries(new Headers(options.headers)), 'user-agent': tvUserAgent } });
    const person = await createTestAccount(server.db);
    const started = await oidc.initiateDeviceAuthorization(config, { scope: 'openid' });
    const pages = await approveOnPhone(server, started.user_code, person, 'ja');
    expect(pages[0]!.body).toContain('<html lang="ja">');
    expect(pages[1]!.body).toContain('このデバイスでログインしますか');
    expect(pages[1]!.body).toContain('Android の Chrome');
  });

  it('answers slow_down to a device polling faster than its interval, and authorization_pending before approval', async () => {
    const config = await tvApp(server);
    const started = await oidc.initiateDeviceAuthorization(config, { scope: 'openid' });
    const poll = () =>
      fetch(`${server.issuer}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          grant_type: deviceCodeGrant,
          device_code: started.device_code,
          client_id: config.clientMetadata().client_id,
        }),
      }).then(async (response) => ((await response.json()) as { error: string }).error);
    expect(await poll()).toBe('authorization_pending');
    expect(await poll()).toBe('slow_down');
  });

  it('ends in expired_token when nobody approves in time', async () => {
    const config = await tvApp(server);
    const started = await oidc.initiateDeviceAuthorization(config, { scope: 'openid' });
    // As if the code's lifetime (and 5 s more) had passed while nobody approved it: the code and its row age alike.
    const passed = started.expires_in + 5;
    await server.db.query(
      `UPDATE oidc_payloads SET payload = jsonb_set(payload, '{exp}', to_jsonb((payload->>'exp')::bigint - $2)),
         expires_at = expires_at - make_interval(secs => $2)
       WHERE model = 'DeviceCode' AND id = $1`,
      [storedId('DeviceCode', started.device_code), passed],
    );
    await expect(oidc.pollDeviceAuthorizationGrant(config, started)).rejects.toMatchObject({ error: 'expired_token' });
  });

  it('refuses a wrong code with a message, and limits guessing per IP', async () => {
    const ip = randomIp();
    const phone = new UserAgent({ headers: { 'x-forwarded-for': ip } });
    const statuses: number[] = [];
    let last: PageResponse | undefined;
    for (let i = 0; i < 4; i += 1) {
      const entry = await phone.request(`${server.issuer}/device`);
      last = await phone.request(`${server.issuer}/device`, { form: { xsrf: hiddenField(entry.body, 'xsrf'), user_code: 'BCDF-GHJK' } });
      statuses.push(last.status);
    }
    expect(statuses).toEqual([400, 400, 400, 429]);
    expect(last!.body).toContain('Too many attempts');
    // Another address still gets the ordinary message.
    const other = new UserAgent({ headers: { 'x-forwarded-for': randomIp() } });
    const entry = await other.request(`${server.issuer}/device`);
    const wrong = await other.request(`${server.issuer}/device`, {
      form: { xsrf: hiddenField(entry.body, 'xsrf'), user_code: 'ZZZZ-ZZZZ' },
    });
    expect(wrong.status).toBe(400);
    expect(wrong.body).toContain('That code is not right.');
  });
});
