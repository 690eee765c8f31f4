import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { replaceSigningKeys } from '../../src/oidc/internals.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

/*
 * Performance issue: discovery and the JWKS are answered from the bytes the provider built,
 * until its signing keys change. Nothing a client sees may differ from the provider's own answer.
 */

let server: TestServer;
let providerRequests = 0;

const documents = ['/.well-known/openid-configuration', '/.well-known/oauth-authorization-server', '/jwks'];

beforeAll(async () => {
  server = await startTestServer({ env: { TRUST_PROXY: 'true' } });
  server.provider.use(async (ctx, next) => {
    if (documents.includes(ctx.path)) providerRequests += 1;
    await next();
  });
});
afterAll(async () => {
  await server?.close();
});

/** What a client sees, without the headers that differ per response. */
async function seen(path: string, headers: Record<string, string> = {}) {
  const response = await fetch(`${server.issuer}${path}`, { headers });
  const kept = [...response.headers].filter(([name]) => !['date', 'x-request-id'].includes(name));
  return { status: response.status, headers: Object.fromEntries(kept), body: await response.text() };
}

const privateJwk = (kind: 'rsa' | 'ec', alg: string) => ({
  ...(kind === 'rsa'
    ? generateKeyPairSync('rsa', { modulusLength: 2048 })
    : generateKeyPairSync('ec', { namedCurve: 'P-256' })
  ).privateKey.export({ format: 'jwk' }),
  kid: randomBytes(9).toString('base64url'),
  alg,
  use: 'sig',
});

describe('discovery and the JWKS', () => {
  it('are the provider’s answer, byte for byte, and later GETs do not reach the provider', async () => {
    for (const path of documents) {
      const first = await seen(path);
      const before = providerRequests;
      const again = await seen(path);
      expect(first.status, path).toBe(200);
      expect(first.headers['cache-control'], path).toBe('public, max-age=300');
      expect(first.headers['content-type'], path).toMatch(/json/);
      expect(again, path).toEqual(first);
      expect(providerRequests, path).toBe(before);
    }
  });

  it('carry the endpoint URLs of the request’s scheme, each scheme its own document', async () => {
    const plain = JSON.parse((await seen(documents[0]!)).body) as { token_endpoint: string };
    const proxied = JSON.parse((await seen(documents[0]!, { 'x-forwarded-proto': 'https' })).body) as { token_endpoint: string };
    expect(plain.token_endpoint).toBe(`${server.issuer}/token`);
    expect(proxied.token_endpoint).toBe(`${server.issuer.replace('http:', 'https:')}/token`);
    expect(JSON.parse((await seen(documents[0]!)).body)).toEqual(plain);
  });

  it('answer a browser’s request with its origin, as the provider does', async () => {
    const before = providerRequests;
    const fromBrowser = await seen('/jwks', { origin: 'https://app.example' });
    expect(fromBrowser.headers['access-control-allow-origin']).toBe('https://app.example');
    expect(providerRequests).toBe(before + 1);
    expect((await seen('/jwks')).headers['access-control-allow-origin']).toBe('*');
  });

  it('publish new signing keys on the next request after the provider takes them', async () => {
    const kids = async () => (JSON.parse((await seen('/jwks')).body) as { keys: { kid: string }[] }).keys.map((key) => key.kid);
    const old = await kids();
    const keys = [privateJwk('rsa', 'RS256'), privateJwk('ec', 'ES256')];
    replaceSigningKeys(server.provider, { keys });
    expect(await kids()).toEqual(keys.map((key) => key.kid));
    expect(await kids()).not.toEqual(old);
  });
});
