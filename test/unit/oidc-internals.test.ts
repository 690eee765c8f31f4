import { generateKeyPairSync } from 'node:crypto';
import Provider from 'oidc-provider';
import { describe, expect, it } from 'vitest';
import internalState from 'oidc-provider/lib/helpers/weak_cache.js';
import { publishedKeySet, replaceSigningKeys, signingKeyOf } from '../../src/oidc/internals.js';

/*
 * src/oidc/internals.ts reaches into oidc-provider beyond its documented configuration. Each
 * member it relies on is checked here, so an upgrade that moves one fails this test instead
 * of sign-ins in production.
 */

const privateJwk = (kid: string) => ({
  ...generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' }),
  kid,
  alg: 'ES256',
  use: 'sig',
});

function provider(): Provider {
  return new Provider('http://localhost:3000', { jwks: { keys: [privateJwk('first')] } });
}

describe("oidc-provider's members that internals.ts relies on", () => {
  it('Client.prototype has backchannelLogout, includeSid and compareClientSecret', () => {
    const prototype = provider().Client.prototype as unknown as Record<string, unknown>;
    for (const member of ['backchannelLogout', 'includeSid', 'compareClientSecret'])
      expect(typeof prototype[member], member).toBe('function');
  });

  it('OIDCContext has the acr getter that authorization codes, ID tokens and device codes read', () => {
    const descriptor = Object.getOwnPropertyDescriptor(provider().OIDCContext.prototype, 'acr');
    expect(typeof descriptor?.get).toBe('function');
    expect(descriptor?.configurable).toBe(true);
  });

  it('the internal state has a keystore that selects and hands out signing keys, and the configured pairwiseIdentifier', async () => {
    const instance = provider();
    const { kid, key } = signingKeyOf(instance, 'ES256');
    expect(kid).toBe('first');
    expect(key).toMatchObject({ kty: 'EC', crv: 'P-256', d: expect.any(String) }); // the private key
    const client = await instance.Client.find('none').catch(() => undefined);
    expect(client).toBeUndefined();
    expect(typeof (internalState(instance) as { configuration: { pairwiseIdentifier: unknown } }).configuration.pairwiseIdentifier).toBe(
      'function',
    );
  });

  it('ReplayDetection has a static unique(iss, jti, exp)', () => {
    expect(typeof (provider().ReplayDetection as unknown as { unique: unknown }).unique).toBe('function');
  });

  it('the keystore initialiser replaces the keys a running provider publishes and signs with', async () => {
    const instance = provider();
    const published = publishedKeySet(instance);
    replaceSigningKeys(instance, { keys: [privateJwk('second'), privateJwk('third')] });
    // A new key set is a new published object: what protocol-metadata.ts keys its documents on.
    expect(publishedKeySet(instance)).not.toBe(published);
    expect(publishedKeySet(instance)).toMatchObject({ keys: [{ kid: 'second' }, { kid: 'third' }] });
    const response = await new Promise<{ keys: { kid: string; d?: string }[] }>((resolve, reject) => {
      const server = instance.listen(0, async () => {
        try {
          const { port } = server.address() as { port: number };
          resolve((await (await fetch(`http://127.0.0.1:${port}/jwks`)).json()) as { keys: { kid: string }[] });
        } catch (error) {
          reject(error);
        } finally {
          server.close();
        }
      });
    });
    expect(response.keys.map((key) => key.kid)).toEqual(['second', 'third']);
    expect(response.keys.some((key) => 'd' in key)).toBe(false);
  });
});
