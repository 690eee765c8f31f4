import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestAccount, createTestClient } from '../helpers/fixtures.js';
import { discoverClient, startAuthorization, exchangeCode } from '../helpers/oidc-client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { completeAuthorization, UserAgent } from '../helpers/user-agent.js';

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server?.close();
});

async function signedInCode(port: number, kind: 'confidential' | 'public' = 'confidential') {
  const account = await createTestAccount(server.db);
  const { client, clientSecret } = await createTestClient(server.db, server.validator, {
    redirectUris: [`http://127.0.0.1:${port}/cb`],
    public: kind === 'public',
  });
  const config = await discoverClient(server.issuer, client.clientId, clientSecret);
  const request = await startAuthorization(config, client.redirectUris[0]!, 'openid email');
  const { callback } = await completeAuthorization(new UserAgent(), request.url.href, client.redirectUris[0]!, {
    email: account.email,
    password: account.password,
    consent: 'allow',
  });
  return {
    config,
    request,
    callback,
    code: callback.searchParams.get('code')!,
    clientSecret: clientSecret!,
    clientId: client.clientId,
    redirectUri: client.redirectUris[0]!,
  };
}

describe('replay protection', () => {
  it('lets exactly one of 50 concurrent redemptions of a code succeed, then revokes what it issued', async () => {
    const { code, clientId, clientSecret, redirectUri, request } = await signedInCode(9301);
    const body = new URLSearchParams({
      grant_type: 'authorization_code',
      code,
      redirect_uri: redirectUri,
      code_verifier: request.verifier,
    });
    const basic = `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`).toString('base64')}`;
    const responses = await Promise.all(
      Array.from({ length: 50 }, () =>
        fetch(`${server.issuer}/token`, {
          method: 'POST',
          headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' },
          body,
        }).then(async (r) => ({ status: r.status, body: (await r.json()) as Record<string, string> })),
      ),
    );
    const winners = responses.filter((r) => r.status === 200);
    const losers = responses.filter((r) => r.status !== 200);
    console.info(`code redemption race: ${winners.length} succeeded, ${losers.length} rejected of ${responses.length}`);
    expect(winners).toHaveLength(1);
    expect(losers.every((r) => r.status === 400 && r.body['error'] === 'invalid_grant')).toBe(true);

    // The replay revoked the grant: the winner's tokens no longer work.
    const introspect = await fetch(`${server.issuer}/token/introspection`, {
      method: 'POST',
      headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: winners[0]!.body['access_token']! }),
    }).then((r) => r.json());
    expect(introspect).toEqual({ active: false });
    const refresh = await fetch(`${server.issuer}/token`, {
      method: 'POST',
      headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: winners[0]!.body['refresh_token']! }),
    });
    expect(refresh.status).toBe(400);
  });

  it('rejects a code redeemed a second time later and revokes the tokens of the first redemption', async () => {
    const { config, request, callback } = await signedInCode(9302);
    const tokens = await exchangeCode(config, callback, request);
    expect((await oidc.tokenIntrospection(config, tokens.access_token)).active).toBe(true);
    await expect(exchangeCode(config, callback, request)).rejects.toMatchObject({ error: 'invalid_grant' });
    expect((await oidc.tokenIntrospection(config, tokens.access_token)).active).toBe(false);
  });

  it("rejects a public client's reused refresh token after rotation and revokes the grant", async () => {
    const { config, request, callback } = await signedInCode(9303, 'public');
    const tokens = await exchangeCode(config, callback, request);
    const rotated = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
    expect(rotated.refresh_token).not.toBe(tokens.refresh_token);
    expect((await oidc.tokenIntrospection(config, rotated.access_token)).active).toBe(true);
    await expect(oidc.refreshTokenGrant(config, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    expect((await oidc.tokenIntrospection(config, rotated.access_token)).active).toBe(false);
    await expect(oidc.refreshTokenGrant(config, rotated.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
  });

  it("a confidential client's refresh retried after a lost answer succeeds: its token is bound to the client and kept", async () => {
    const { config, request, callback } = await signedInCode(9304);
    const tokens = await exchangeCode(config, callback, request);
    // The first answer is lost (an instance killed before replying): the service sends the same request again.
    const lost = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
    const retried = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
    expect(lost.refresh_token).toBe(tokens.refresh_token);
    expect(retried.refresh_token).toBe(tokens.refresh_token);
    expect((await oidc.tokenIntrospection(config, lost.access_token)).active).toBe(true);
    expect((await oidc.tokenIntrospection(config, retried.access_token)).active).toBe(true);
    // Without the client's secret the token is worth nothing.
    const stolen = await fetch(`${server.issuer}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'refresh_token',
        refresh_token: tokens.refresh_token!,
        client_id: config.clientMetadata().client_id,
      }),
    });
    expect(stolen.status).toBe(401);
  });
});
