import { describe, expect, it } from 'vitest';
import { clientSecretMatches, hashClientSecret, isHashedClientSecret, newClientSecret } from '../../src/security/client-secrets.js';

describe('client secrets at rest', () => {
  it('stores a digest that verifies the issued secret and nothing else', () => {
    const secret = newClientSecret();
    const stored = hashClientSecret(secret);
    expect(stored).not.toContain(secret);
    expect(isHashedClientSecret(stored)).toBe(true);
    expect(clientSecretMatches(stored, secret)).toBe(true);
    expect(clientSecretMatches(stored, `${secret}x`)).toBe(false);
    expect(clientSecretMatches(stored, '')).toBe(false);
    expect(clientSecretMatches(stored, undefined)).toBe(false);
  });

  it('never accepts a secret stored in clear, nor the digest presented as the secret', () => {
    const secret = newClientSecret();
    expect(clientSecretMatches(secret, secret)).toBe(false);
    expect(clientSecretMatches(hashClientSecret(secret), hashClientSecret(secret))).toBe(false);
  });

  it('issues 256-bit random secrets', () => {
    const secrets = new Set(Array.from({ length: 100 }, newClientSecret));
    expect(secrets.size).toBe(100);
    for (const secret of secrets) expect(Buffer.from(secret, 'base64url')).toHaveLength(32);
  });
});
