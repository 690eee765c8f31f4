import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createTestAccount, createTestClient } from '../helpers/fixtures.js';
import { LogoutListener, waitFor } from '../helpers/listener.js';
import { discoverClient, startAuthorization, exchangeCode } from '../helpers/oidc-client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { completeAuthorization, UserAgent } from '../helpers/user-agent.js';
import { listLogoutDeliveries } from '../../src/logout/deliveries.js';
import type { ClientRegistration } from '../../src/clients/store.js';

const run = promisify(execFile);
let server: TestServer;
const listeners: LogoutListener[] = [];

beforeAll(async () => {
  server = await startTestServer({ env: { LOGOUT_DELIVERY_MAX_AGE_SECONDS: '4' } });
});
afterAll(async () => {
  await server?.close();
  await Promise.all(listeners.map((listener) => listener.stop()));
});

async function listener(status = 200) {
  const started = await new LogoutListener(status).start();
  listeners.push(started);
  return started;
}

/** Registers a service on `port` (with these logout endpoints) and signs the agent in to it. */
async function signInToService(
  agent: UserAgent,
  account: { email: string; password: string },
  port: number,
  logoutEndpoints: Pick<ClientRegistration, 'backchannelLogoutUri' | 'frontchannelLogoutUri'>,
) {
  const registered = await createTestClient(server.db, server.validator, {
    redirectUris: [`http://127.0.0.1:${port}/cb`],
    postLogoutRedirectUris: [`http://127.0.0.1:${port}/bye`],
    ...logoutEndpoints,
  });
  const config = await discoverClient(server.issuer, registered.client.clientId, registered.clientSecret);
  const request = await startAuthorization(config, registered.client.redirectUris[0]!, 'openid');
  const { callback } = await completeAuthorization(agent, request.url.href, registered.client.redirectUris[0]!, {
    ...account,
    consent: 'allow',
  });
  const tokens = await exchangeCode(config, callback, request);
  return { registered, config, tokens, claims: tokens.claims()! };
}

async function logOut(agent: UserAgent, config: oidc.Configuration, idToken: string, postLogoutRedirectUri: string) {
  const confirm = await agent.request(
    oidc.buildEndSessionUrl(config, { id_token_hint: idToken, post_logout_redirect_uri: postLogoutRedirectUri }).href,
  );
  const xsrf = /name="xsrf" value="([^"]+)"/.exec(confirm.body)![1]!;
  const action = new URL(/action="([^"]+)"/.exec(confirm.body)![1]!, server.issuer).href;
  const started = Date.now();
  const done = await agent.follow(action, postLogoutRedirectUri, { form: { xsrf, logout: 'yes' } });
  return { done, elapsedMs: Date.now() - started };
}

describe('single logout', () => {
  it('tells all three services of one session, by signed back-channel logout tokens, within seconds', async () => {
    const account = await createTestAccount(server.db);
    const agent = new UserAgent();
    const endpoints = [await listener(), await listener(), await listener()];
    const services = [];
    for (const [i, endpoint] of endpoints.entries())
      services.push(await signInToService(agent, account, 9600 + i, { backchannelLogoutUri: endpoint.url }));

    // Every ID token carries the session id the logout token will name.
    for (const service of services) expect(service.claims.sid).toEqual(expect.any(String));

    const first = services[0]!;
    const { done, elapsedMs } = await logOut(
      agent,
      first.config,
      first.tokens.id_token!,
      first.registered.client.postLogoutRedirectUris[0]!,
    );
    expect(done).toEqual({ stoppedAt: first.registered.client.postLogoutRedirectUris[0] });

    await waitFor(() => endpoints.every((endpoint) => endpoint.tokens.length === 1), 15_000);
    const jwks = createRemoteJWKSet(new URL(`${server.issuer}/jwks`));
    for (const [i, endpoint] of endpoints.entries()) {
      const service = services[i]!;
      const { payload, protectedHeader } = await jwtVerify(endpoint.tokens[0]!, jwks, {
        issuer: server.issuer,
        audience: service.registered.client.clientId,
      });
      expect(protectedHeader.typ).toBe('logout+jwt');
      expect(payload.events).toEqual({ 'http://schemas.openid.net/event/backchannel-logout': {} });
      expect(payload.sub).toBe(service.claims.sub);
      expect(payload['sid']).toBe(service.claims.sid);
      expect(payload.jti).toEqual(expect.any(String));
      expect(payload.iat).toEqual(expect.any(Number));
      expect(payload.exp).toEqual(expect.any(Number));
      expect(payload).not.toHaveProperty('nonce');
    }
    console.info(`single logout: page answered in ${elapsedMs} ms; 3 services notified`);

    const deliveries = await listLogoutDeliveries(server.db, {
      since: new Date(Date.now() - 60_000),
      clientId: services[1]!.registered.client.clientId,
      limit: 10,
    });
    expect(deliveries).toHaveLength(1);
    expect(deliveries[0]).toMatchObject({ status: 'delivered', attempts: 1, accountId: null, sid: null });
  });

  it('never makes the user wait for a dead or failing service, retries it and records the failure', async () => {
    const account = await createTestAccount(server.db);
    const agent = new UserAgent();
    const failing = await listener(500);
    const healthy = await listener();
    const dead = await signInToService(agent, account, 9610, { backchannelLogoutUri: 'http://127.0.0.1:9/backchannel-logout' }); // nothing listens on port 9
    const erroring = await signInToService(agent, account, 9611, { backchannelLogoutUri: failing.url });
    await signInToService(agent, account, 9612, { backchannelLogoutUri: healthy.url });

    const { elapsedMs } = await logOut(agent, dead.config, dead.tokens.id_token!, dead.registered.client.postLogoutRedirectUris[0]!);
    expect(elapsedMs).toBeLessThan(2500); // a dead service would otherwise cost the 2.5 s fetch timeout
    await waitFor(() => healthy.tokens.length === 1, 15_000);

    for (const service of [dead, erroring]) {
      const clientId = service.registered.client.clientId;
      const [delivery] = await waitFor(async () => {
        const found = await listLogoutDeliveries(server.db, { since: new Date(Date.now() - 60_000), clientId, limit: 1 });
        return found[0]?.status === 'failed' && found;
      }, 15_000);
      expect(delivery!.attempts).toBeGreaterThan(1);
      expect(delivery!.lastError).toEqual(expect.any(String));
      expect(delivery!.accountId).toBeNull();
    }
    expect(failing.tokens.length).toBeGreaterThan(1); // it was retried
  });
});

describe('support tools for sessions and deliveries', () => {
  it('lists an account’s sessions, revokes one with back-channel logout, and shows the deliveries (real bin)', async () => {
    // The CLI reads the server's environment, ISSUER included: the logout tokens it queues are the server's to send.
    const env = { ...process.env, DATABASE_URL: inject('databaseUrl'), ISSUER: server.issuer, LOG_LEVEL: 'warn' };
    const idp = async (...args: string[]) => JSON.parse((await run('node', ['dist/cli/index.js', ...args, '--json'], { env })).stdout);

    const account = await createTestAccount(server.db);
    const endpoint = await listener();
    const service = await signInToService(new UserAgent(), account, 9620, { backchannelLogoutUri: endpoint.url });
    const clientId = service.registered.client.clientId;

    const sessions = (await idp('sessions', 'list', '--account', account.email)) as {
      uid: string;
      services: { clientId: string; sid: string }[];
    }[];
    expect(sessions).toHaveLength(1);
    expect(sessions[0]!.services).toEqual([{ clientId, sid: service.claims.sid }]);

    // A uid can begin with '-' (base64url): after '--' it is never read as an option.
    const revoked = JSON.parse(
      (await run('node', ['dist/cli/index.js', 'sessions', 'revoke', '--json', '--', sessions[0]!.uid], { env })).stdout,
    );
    expect(revoked).toMatchObject({ revoked: true, notified: [clientId] });
    expect(await idp('sessions', 'list', '--account', account.id)).toEqual([]);

    // The CLI only queues; the server's worker delivers.
    await waitFor(() => endpoint.tokens.length === 1, 15_000);
    const deliveries = await waitFor(async () => {
      const found = (await idp('logout-deliveries', '--client', clientId, '--since', '5m')) as { status: string; reason: string }[];
      return found[0]?.status === 'delivered' && found;
    });
    expect(deliveries).toEqual([expect.objectContaining({ status: 'delivered', reason: 'session_revoked' })]);
  });
});

describe('front-channel logout', () => {
  it('loads each front-channel service in a hidden iframe with iss and sid, then continues to the service', async () => {
    const account = await createTestAccount(server.db);
    const agent = new UserAgent();
    const services = [
      await signInToService(agent, account, 9630, { frontchannelLogoutUri: 'http://127.0.0.1:9630/frontchannel-logout' }),
      await signInToService(agent, account, 9631, { frontchannelLogoutUri: 'http://127.0.0.1:9631/fc' }),
    ];
    const sids = services.map((service) => service.claims['sid'] as string);
    const registered = services[0]!.registered;
    const first = { config: services[0]!.config, idToken: services[0]!.tokens.id_token! };

    const confirm = await agent.request(
      oidc.buildEndSessionUrl(first.config, {
        id_token_hint: first.idToken,
        post_logout_redirect_uri: registered.client.postLogoutRedirectUris[0]!,
      }).href,
    );
    const xsrf = /name="xsrf" value="([^"]+)"/.exec(confirm.body)![1]!;
    const action = new URL(/action="([^"]+)"/.exec(confirm.body)![1]!, server.issuer).href;
    const page = await agent.request(action, { form: { xsrf, logout: 'yes' } });

    expect(page.status).toBe(200);
    const frames = [...page.body.matchAll(/<iframe[^>]*src="([^"]+)"/g)].map((m) => new URL(m[1]!.replaceAll('&amp;', '&')));
    expect(frames.map((f) => f.origin + f.pathname).sort()).toEqual([
      'http://127.0.0.1:9630/frontchannel-logout',
      'http://127.0.0.1:9631/fc',
    ]);
    for (const frame of frames) expect(frame.searchParams.get('iss')).toBe(server.issuer);
    expect(frames.map((f) => f.searchParams.get('sid')).sort()).toEqual([...sids].sort());
    expect(page.body).toContain(`content="3;url=${registered.client.postLogoutRedirectUris[0]}`);
    const frameSrc = /frame-src ([^;]+)/.exec(page.headers.get('content-security-policy')!)![1]!.split(' ').sort();
    expect(frameSrc).toEqual(['http://127.0.0.1:9630', 'http://127.0.0.1:9631']);
  });
});
