import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { ConfigError } from '../../src/errors.js';
import { decryptJson, encryptJson, keyEncryptionKey, KeyDecryptionError, type Envelope } from '../../src/security/key-encryption.js';

const secretJwk = { kty: 'EC', crv: 'P-256', x: 'x-value', y: 'y-value', d: 'private-scalar', kid: 'kid-1', alg: 'ES256', use: 'sig' };
const newKek = () => keyEncryptionKey(randomBytes(32));

/** Flips one bit of a base64url field. */
function flipBit(value: string): string {
  const bytes = Buffer.from(value, 'base64url');
  bytes[0]! ^= 0x01;
  return bytes.toString('base64url');
}

describe('envelope encryption of private JWKs (AES-256-GCM)', () => {
  it('round-trips a JWK and names the key-encryption key by a hash prefix, never the key', () => {
    const kek = newKek();
    const envelope = encryptJson(secretJwk, 'kid-1', kek);
    expect(envelope).toMatchObject({ enc: 'A256GCM', kek: expect.stringMatching(/^[0-9a-f]{8}$/) });
    expect(envelope.kek).toBe(kek.id);
    expect(JSON.stringify(envelope)).not.toContain('private-scalar');
    expect(JSON.stringify(envelope)).not.toContain(kek.key.toString('base64url'));
    expect(decryptJson(envelope, 'kid-1', [kek])).toEqual(secretJwk);
  });

  it('uses a fresh 12-byte IV every time, so equal plaintexts give different ciphertexts', () => {
    const kek = newKek();
    const first = encryptJson(secretJwk, 'kid-1', kek);
    const second = encryptJson(secretJwk, 'kid-1', kek);
    expect(Buffer.from(first.iv, 'base64url')).toHaveLength(12);
    expect(first.iv).not.toBe(second.iv);
    expect(first.ciphertext).not.toBe(second.ciphertext);
  });

  it('decrypts with any configured key-encryption key, picking the one the envelope names', () => {
    const [current, previous] = [newKek(), newKek()];
    const envelope = encryptJson(secretJwk, 'kid-1', previous);
    expect(decryptJson(envelope, 'kid-1', [current, previous])).toEqual(secretJwk);
  });

  it('refuses with a configuration error when the key-encryption key that encrypted it is not configured', () => {
    const envelope = encryptJson(secretJwk, 'kid-1', newKek());
    const attempt = () => decryptJson(envelope, 'kid-1', [newKek()]);
    expect(attempt).toThrow(ConfigError);
    expect(attempt).toThrow(`encrypted with key-encryption key ${envelope.kek}, which is not configured (KEY_ENCRYPTION_KEY)`);
  });

  it('fails authentication under a wrong key that carries the same id', () => {
    const envelope = encryptJson(secretJwk, 'kid-1', newKek());
    const impostor = { id: envelope.kek, key: randomBytes(32) };
    expect(() => decryptJson(envelope, 'kid-1', [impostor])).toThrow(KeyDecryptionError);
  });

  it.each<[string, (envelope: Envelope) => Envelope]>([
    ['ciphertext', (e) => ({ ...e, ciphertext: flipBit(e.ciphertext) })],
    ['tag', (e) => ({ ...e, tag: flipBit(e.tag) })],
    ['IV', (e) => ({ ...e, iv: flipBit(e.iv) })],
  ])('fails authentication when the %s is altered', (_field, tamper) => {
    const kek = newKek();
    const envelope = tamper(encryptJson(secretJwk, 'kid-1', kek));
    expect(() => decryptJson(envelope, 'kid-1', [kek])).toThrow(KeyDecryptionError);
  });

  it('refuses a truncated tag instead of checking fewer bits', () => {
    const kek = newKek();
    const envelope = encryptJson(secretJwk, 'kid-1', kek);
    const truncated = { ...envelope, tag: Buffer.from(envelope.tag, 'base64url').subarray(0, 4).toString('base64url') };
    expect(() => decryptJson(truncated, 'kid-1', [kek])).toThrow(KeyDecryptionError);
  });

  it('fails authentication when the associated data (the kid of the row) differs: an envelope cannot move to another row', () => {
    const kek = newKek();
    const envelope = encryptJson(secretJwk, 'kid-1', kek);
    expect(() => decryptJson(envelope, 'kid-2', [kek])).toThrow(KeyDecryptionError);
  });
});

describe('KEY_ENCRYPTION_KEY and KEY_ACTIVATION_DELAY_SECONDS', () => {
  const key = randomBytes(32);

  it('is optional, and the activation delay defaults to an hour', () => {
    expect(loadConfig({})).toMatchObject({ keyEncryptionKeys: undefined, keyActivationDelaySeconds: 3600 });
  });

  it('accepts base64 and base64url keys, in a comma-separated list that keeps its order', () => {
    const other = randomBytes(32);
    const config = loadConfig({
      KEY_ENCRYPTION_KEY: `${key.toString('base64')}, ${other.toString('base64url')}`,
      KEY_ACTIVATION_DELAY_SECONDS: '0',
    });
    expect(config.keyEncryptionKeys).toEqual([key, other]);
    expect(config.keyActivationDelaySeconds).toBe(0);
  });

  it.each([
    ['too short', randomBytes(16).toString('base64')],
    ['too long', randomBytes(48).toString('base64')],
    ['not base64', 'k'.repeat(42) + '!'],
  ])('rejects a key that is %s with one clear line', (_case, value) => {
    expect(() => loadConfig({ KEY_ENCRYPTION_KEY: value })).toThrow(
      'invalid configuration: KEY_ENCRYPTION_KEY.0: each key must be 32 random bytes in base64 or base64url (e.g. `openssl rand -base64 32`)',
    );
  });

  it('rejects a negative activation delay', () => {
    expect(() => loadConfig({ KEY_ACTIVATION_DELAY_SECONDS: '-1' })).toThrow(
      'invalid configuration: KEY_ACTIVATION_DELAY_SECONDS: expected zero or more seconds',
    );
  });
});
