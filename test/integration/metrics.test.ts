import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { withoutQueryMetrics } from '../../src/db/index.js';
import { createApp } from '../../src/http/app.js';
import { startMetricsServer } from '../../src/http/health.js';
import { createLogger } from '../../src/logger.js';
import { createTestAccount, createTestClient, uniqueEmail } from '../helpers/fixtures.js';
import { discoverClient, startAuthorization, exchangeCode } from '../helpers/oidc-client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { latestMail } from '../helpers/self-service.js';
import { completeAuthorization, hiddenField, UserAgent } from '../helpers/user-agent.js';

const metricsToken = 'metrics-token-for-the-test-suite-0123456789';
let server: TestServer;
let logoutEndpoint: Server;
let logoutTokens = 0;

beforeAll(async () => {
  server = await startTestServer({ env: { METRICS_TOKEN: metricsToken } });
  logoutEndpoint = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      logoutTokens += 1;
      res.end();
    });
  });
  await new Promise<void>((resolve) => logoutEndpoint.listen(0, '127.0.0.1', resolve));
});
afterAll(async () => {
  await server?.close();
  await new Promise<void>((resolve) => logoutEndpoint?.close(() => resolve()));
});

/** The value of one Prometheus sample, e.g. sample(text, 'idp_sign_ins_total', { outcome: 'success' }); 0 when absent. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number {
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const present = Object.fromEntries([...(match[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    if (Object.entries(labels).every(([key, value]) => present[key] === value)) return Number(match[3]);
  }
  return 0;
}

async function scrape(): Promise<string> {
  const response = await fetch(`${server.issuer}/metrics`, { headers: { authorization: `Bearer ${metricsToken}` } });
  expect(response.status).toBe(200);
  return response.text();
}

async function scrapeUntil(check: (text: string) => boolean, timeoutMs = 10_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = await scrape();
    if (check(text) || Date.now() > deadline) return text;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('GET /metrics after real flows', () => {
  it('counts sign-ins, consents, tokens by grant type, token errors, revocations, back-channel logouts and query latency', async () => {
    const account = await createTestAccount(server.db);
    const port = (logoutEndpoint.address() as AddressInfo).port;
    const { client, clientSecret } = await createTestClient(server.db, server.validator, {
      redirectUris: ['http://127.0.0.1:9700/cb'],
      postLogoutRedirectUris: ['http://127.0.0.1:9700/bye'],
      backchannelLogoutUri: `http://127.0.0.1:${port}/backchannel-logout`,
    });
    const config = await discoverClient(server.issuer, client.clientId, clientSecret);
    const redirectUri = client.redirectUris[0]!;
    const agent = new UserAgent();

    const request = await startAuthorization(config, redirectUri, 'openid email offline_access');
    const { callback } = await completeAuthorization(agent, request.url.href, redirectUri, { ...account, consent: 'allow' });
    const tokens = await exchangeCode(config, callback, request);
    await oidc.fetchUserInfo(config, tokens.access_token, tokens.claims()!.sub);
    // A confidential client's refresh keeps its refresh token: an access token issued, no refresh token.
    const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
    expect(refreshed.refresh_token).toBe(tokens.refresh_token);
    expect((await oidc.tokenIntrospection(config, refreshed.access_token)).active).toBe(true);
    // An unknown refresh token is refused (a token error).
    await expect(oidc.refreshTokenGrant(config, 'not-a-refresh-token')).rejects.toMatchObject({ error: 'invalid_grant' });

    // A fresh grant whose refresh token the service revokes itself.
    const second = await startAuthorization(config, redirectUri, 'openid email offline_access');
    const again = await completeAuthorization(agent, second.url.href, redirectUri, { ...account, consent: 'allow' });
    const tokens2 = await exchangeCode(config, again.callback, second);
    await oidc.tokenRevocation(config, tokens2.refresh_token!);

    const machine = await createTestClient(server.db, server.validator, {
      redirectUris: [],
      postLogoutRedirectUris: [],
      grantTypes: ['client_credentials'],
      scopes: ['openid'],
    });
    await oidc.clientCredentialsGrant(await discoverClient(server.issuer, machine.client.clientId, machine.clientSecret));

    // Logging out sends the service a back-channel logout token.
    const confirm = await agent.request(
      oidc.buildEndSessionUrl(config, { id_token_hint: tokens2.id_token!, post_logout_redirect_uri: client.postLogoutRedirectUris[0]! })
        .href,
    );
    const xsrf = /name="xsrf" value="([^"]+)"/.exec(confirm.body)![1]!;
    const action = new URL(/action="([^"]+)"/.exec(confirm.body)![1]!, server.issuer).href;
    await agent.follow(action, client.postLogoutRedirectUris[0]!, { form: { xsrf, logout: 'yes' } });

    // Deliveries are queued and sent by a worker: wait for it.
    const text = await scrapeUntil((t) => logoutTokens > 0 && sample(t, 'idp_backchannel_logouts_total', { outcome: 'success' }) > 0);
    expect(logoutTokens).toBeGreaterThan(0);
    expect(sample(text, 'idp_backchannel_logouts_total', { outcome: 'success' })).toBeGreaterThan(0);

    expect(sample(text, 'idp_sign_ins_total', { outcome: 'success' })).toBeGreaterThan(0);
    expect(sample(text, 'idp_consents_total', { outcome: 'allowed' })).toBeGreaterThan(0);
    expect(sample(text, 'idp_tokens_issued_total', { kind: 'authorization_code', grant_type: 'authorization_code' })).toBe(2);
    expect(sample(text, 'idp_tokens_issued_total', { kind: 'access_token', grant_type: 'authorization_code' })).toBe(2);
    expect(sample(text, 'idp_tokens_issued_total', { kind: 'id_token', grant_type: 'authorization_code' })).toBe(2);
    expect(sample(text, 'idp_tokens_issued_total', { kind: 'refresh_token', grant_type: 'authorization_code' })).toBe(2);
    expect(sample(text, 'idp_tokens_issued_total', { kind: 'access_token', grant_type: 'refresh_token' })).toBe(1);
    expect(sample(text, 'idp_tokens_issued_total', { kind: 'refresh_token', grant_type: 'refresh_token' })).toBe(0);
    expect(sample(text, 'idp_tokens_issued_total', { kind: 'access_token', grant_type: 'client_credentials' })).toBe(1);
    expect(sample(text, 'idp_token_errors_total', { grant_type: 'refresh_token', error: 'invalid_grant' })).toBe(1);
    expect(sample(text, 'idp_revocations_total', { kind: 'refresh_token' })).toBe(1);
    // The revoked refresh token's grant.
    expect(sample(text, 'idp_revocations_total', { kind: 'grant' })).toBeGreaterThanOrEqual(1);

    expect(sample(text, 'http_request_duration_seconds_count', { method: 'POST', route: '/token', status: '200' })).toBeGreaterThan(0);
    expect(sample(text, 'http_request_duration_seconds_count', { method: 'GET', route: '/me', status: '200' })).toBe(1);
    expect(sample(text, 'idp_db_query_duration_seconds_count', { operation: 'select', outcome: 'ok' })).toBeGreaterThan(0);
    expect(sample(text, 'idp_db_query_duration_seconds_count', { operation: 'insert', outcome: 'ok' })).toBeGreaterThan(0);
    expect(sample(text, 'idp_db_query_duration_seconds_sum', { operation: 'select', outcome: 'ok' })).toBeGreaterThan(0);
    expect(text).toContain('idp_db_pool_connections{state="total"}');
    // prom-client's default metrics include event-loop lag.
    expect(text).toMatch(/^nodejs_eventloop_lag_seconds \d/m);
    expect(text).toMatch(/^nodejs_eventloop_lag_p99_seconds \d/m);
    expect(text).toMatch(/^idp_password_hashing\{state="running"\} \d/m);
    expect(text).toMatch(/^idp_password_hashing\{state="waiting"\} \d/m);
  });
});

describe('who may read the metrics', () => {
  it('serves /metrics on the public listener only to the METRICS_TOKEN bearer', async () => {
    expect((await fetch(`${server.issuer}/metrics`)).status).toBe(401);
    const wrong = await fetch(`${server.issuer}/metrics`, { headers: { authorization: `Bearer ${metricsToken.slice(0, -1)}x` } });
    expect(wrong.status).toBe(401);
    expect(await wrong.text()).not.toContain('idp_');
  });

  it('without METRICS_TOKEN has no /metrics on the public listener; METRICS_PORT serves them on loopback', async () => {
    const plain = await startTestServer();
    const config = loadConfig({ METRICS_PORT: '0', LOG_LEVEL: 'silent' });
    const metricsServer = (await startMetricsServer(config, createLogger(config)))!;
    try {
      expect((await fetch(`${plain.issuer}/metrics`)).status).toBe(404);
      const address = metricsServer.address() as AddressInfo;
      expect(address.address).toBe('127.0.0.1');
      const served = await fetch(`http://127.0.0.1:${address.port}/metrics`);
      expect(served.status).toBe(200);
      expect(await served.text()).toContain('http_request_duration_seconds_bucket');
      expect((await fetch(`http://127.0.0.1:${address.port}/`)).status).toBe(404);
    } finally {
      metricsServer.close();
      await plain.close();
    }
  });

  it('no metric tells whether a password-reset request named an address that has an account', async () => {
    // Counters and histogram counts only: bucket boundaries of timings are noise either way.
    const counts = (text: string) =>
      new Map(
        text
          .split('\n')
          .filter((line) => /^(idp_|http_)\w*(_count|_total)[{ ]/.test(line))
          .map((line) => line.split(' ') as [string, string]),
      );
    const delta = (before: Map<string, string>, after: Map<string, string>) =>
      [...after]
        .map(([series, value]) => [series, Number(value) - Number(before.get(series) ?? 0)] as const)
        .filter(([, change]) => change !== 0);

    const requestReset = async (email: string) => {
      const agent = new UserAgent();
      const form = await agent.request(`${server.issuer}/password/forgot`);
      const before = counts(await scrape());
      const answered = await agent.request(`${server.issuer}/password/forgot`, { form: { _csrf: hiddenField(form.body, '_csrf'), email } });
      expect(answered.status).toBe(200);
      return before;
    };
    // Nothing else may run statements meanwhile: the delivery worker polls, and this test's own
    // reads of the outbox go unobserved, as the workflow's do.
    await server.logoutDeliveries.stop();
    await server.eventDeliveries.stop();
    server.keyRefresh.stop();
    const account = await createTestAccount(server.db);
    const beforeKnown = await requestReset(account.email);
    await withoutQueryMetrics(() => latestMail(server.db, account.email, 'reset_password')); // the work after the response is done
    const known = delta(beforeKnown, counts(await scrape()));
    const beforeUnknown = await requestReset(uniqueEmail('nobody'));
    const unknown = delta(beforeUnknown, counts(await scrape()));
    expect(known).toEqual(unknown);
    expect(known.length).toBeGreaterThan(0); // the request itself is counted, the same either way
  });
});

describe('request log', () => {
  it('logs every request exactly once with its request id, route, status and duration', async () => {
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
        done();
      },
    });
    const logger = createLogger({ logLevel: 'info' }, sink);
    const { app, logoutDeliveries, eventDeliveries, keyRefresh } = await createApp(server.config, server.db, logger);
    const http = createServer(app.callback());
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    try {
      const base = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
      const sent = [
        ['/.well-known/openid-configuration', 'r-discovery'],
        ['/healthz', 'r-health'],
        ['/no-such-page', 'r-missing'],
        ['/interaction/not-an-interaction', 'r-interaction'],
      ] as const;
      for (const [path, id] of sent) {
        const response = await fetch(base + path, { headers: { 'x-request-id': id } });
        await response.arrayBuffer();
        expect(response.headers.get('x-request-id')).toBe(id);
      }
      const requestLines = lines.filter((line) => line['msg'] === 'request');
      expect(requestLines.map((line) => line['requestId'])).toEqual(sent.map(([, id]) => id));
      expect(requestLines.map((line) => [line['route'], line['status']])).toEqual([
        ['/.well-known/openid-configuration', 200],
        ['/healthz', 200],
        ['unmatched', 404],
        [expect.stringContaining('/interaction/:uid'), 400],
      ]);
      for (const line of requestLines) expect(line['durationMs']).toEqual(expect.any(Number));
    } finally {
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
      await logoutDeliveries.stop();
      await eventDeliveries.stop();
      keyRefresh.stop();
    }
  });
});
