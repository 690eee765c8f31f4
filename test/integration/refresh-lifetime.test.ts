import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storedId } from '../../src/oidc/adapter.js';
import { createTestAccount, createTestClient } from '../helpers/fixtures.js';
import { discoverClient, exchangeCode, startAuthorization } from '../helpers/oidc-client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { completeAuthorization, UserAgent } from '../helpers/user-agent.js';

/*
 * Security review, finding 15: a public client's refresh token (usable by whoever holds it,
 * no secret needed) has an absolute lifetime that rotation does not extend. A confidential
 * client's token is bound to its secret: kept, and rotated (sliding) only near its expiry.
 */

let server: TestServer;
const awaitedNotices = new Map<string, () => void>();

beforeAll(async () => {
  server = await startTestServer();
  // Subscribed after the server's own cache, so it has dropped the row when this is told.
  server.changeNotices.subscribe('artefacts', (name) => {
    if (name === undefined) return;
    awaitedNotices.get(name)?.();
    awaitedNotices.delete(name);
  });
});
afterAll(async () => {
  await server?.close();
});

async function refreshTokenFor(kind: 'public' | 'confidential') {
  const account = await createTestAccount(server.db);
  const registered = await createTestClient(server.db, server.validator, {
    redirectUris: ['http://127.0.0.1:9500/cb'],
    public: kind === 'public',
  });
  const config = await discoverClient(server.issuer, registered.client.clientId, registered.clientSecret);
  const request = await startAuthorization(config, registered.client.redirectUris[0]!, 'openid offline_access');
  const { callback } = await completeAuthorization(
    new UserAgent(),
    `${request.url.href}&prompt=consent`,
    registered.client.redirectUris[0]!,
    {
      ...account,
      consent: 'allow',
    },
  );
  return { config, refreshToken: (await exchangeCode(config, callback, request)).refresh_token! };
}

const expiryOf = async (token: string) => (await server.provider.RefreshToken.find(token))!.exp!;

/**
 * As if the token had been issued a full REFRESH_TOKEN_TTL ago, less `seconds`: it has
 * `seconds` left. Changed by hand, as another instance would: it returns once the server has
 * heard of the change, as the next request on a loaded machine might come before that.
 */
async function leaveOnly(token: string, seconds: number): Promise<number> {
  const exp = Math.floor(Date.now() / 1000) + seconds;
  const id = storedId('RefreshToken', token);
  const heard = new Promise<void>((resolve) => awaitedNotices.set(`RefreshToken:${id}`, resolve));
  await server.db.query(
    `UPDATE oidc_payloads
     SET payload = jsonb_set(jsonb_set(payload, '{exp}', to_jsonb($2::bigint)), '{iat}', to_jsonb($2::bigint - $3::bigint)),
         expires_at = to_timestamp($2)
     WHERE model = 'RefreshToken' AND id = $1`,
    [id, exp, server.config.ttl.refreshToken],
  );
  await heard;
  return exp;
}

describe('refresh token lifetime', () => {
  it("a public client's rotated refresh token keeps the expiry of the first one", async () => {
    const { config, refreshToken } = await refreshTokenFor('public');
    const exp = await leaveOnly(refreshToken, 600);
    const first = await oidc.refreshTokenGrant(config, refreshToken);
    expect(Math.abs((await expiryOf(first.refresh_token!)) - exp)).toBeLessThanOrEqual(1);
    const second = await oidc.refreshTokenGrant(config, first.refresh_token!);
    expect(Math.abs((await expiryOf(second.refresh_token!)) - exp)).toBeLessThanOrEqual(1);
  });

  it("a confidential client's refresh token is kept until 70 % of its lifetime has passed", async () => {
    const { config, refreshToken } = await refreshTokenFor('confidential');
    const exp = await expiryOf(refreshToken);
    const refreshed = await oidc.refreshTokenGrant(config, refreshToken);
    expect(refreshed.refresh_token).toBe(refreshToken);
    expect(await expiryOf(refreshToken)).toBe(exp);
  });

  it("a confidential client's refresh token near its expiry rotates, the new one with a fresh REFRESH_TOKEN_TTL", async () => {
    const { config, refreshToken } = await refreshTokenFor('confidential');
    await leaveOnly(refreshToken, 600);
    const rotated = await oidc.refreshTokenGrant(config, refreshToken);
    expect(rotated.refresh_token).not.toBe(refreshToken);
    expect((await expiryOf(rotated.refresh_token!)) - Math.floor(Date.now() / 1000)).toBeGreaterThan(server.config.ttl.refreshToken - 60);
    await expect(oidc.refreshTokenGrant(config, refreshToken)).rejects.toMatchObject({ error: 'invalid_grant' });
  });
});
