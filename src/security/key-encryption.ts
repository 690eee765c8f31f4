import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { z } from 'zod';
import { ConfigError } from '../errors.js';

/**
 * Envelope encryption of small JSON secrets (private JWKs) with AES-256-GCM under a
 * key-encryption key (KEK). Pure functions: where KEKs come from is the caller's business.
 */

const CIPHER = 'aes-256-gcm';
// 96-bit IVs are GCM's native size; random per envelope (we encrypt far fewer than 2^32 values per KEK).
const IV_BYTES = 12;
// Full-length tags only: without authTagLength Node would accept a truncated tag on decryption.
const TAG_BYTES = 16;

export interface KeyEncryptionKey {
  /** First 8 hex characters of SHA-256 of the key: names the KEK in envelopes without revealing it. */
  readonly id: string;
  readonly key: Buffer;
}

export function keyEncryptionKey(bytes: Uint8Array): KeyEncryptionKey {
  if (bytes.length !== 32) throw new RangeError('a key-encryption key must be 32 bytes');
  return { id: createHash('sha256').update(bytes).digest('hex').slice(0, 8), key: Buffer.from(bytes) };
}

/** The KEKs in use: the primary encrypts what is written, any of them may decrypt. */
export interface KeyRing {
  primary: KeyEncryptionKey;
  all: KeyEncryptionKey[];
}

const base64url = z.string().regex(/^[A-Za-z0-9_-]*$/);

export const envelopeSchema = z.object({
  enc: z.literal('A256GCM'),
  kek: z.string().min(1),
  iv: base64url,
  tag: base64url,
  ciphertext: base64url,
});
export type Envelope = z.infer<typeof envelopeSchema>;

/** The ciphertext, its tag, IV or associated data was altered, or the KEK is not the one that encrypted it. */
export class KeyDecryptionError extends Error {
  override name = 'KeyDecryptionError';
}

/**
 * Encrypts `value` as JSON. `associatedData` is authenticated but not stored: the same value
 * must be given to decrypt, which binds the envelope to its owner (e.g. the kid of its row)
 * so it cannot be copied onto another.
 */
export function encryptJson(value: unknown, associatedData: string, kek: KeyEncryptionKey): Envelope {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv(CIPHER, kek.key, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(Buffer.from(associatedData, 'utf8'));
  const ciphertext = Buffer.concat([cipher.update(JSON.stringify(value), 'utf8'), cipher.final()]);
  return {
    enc: 'A256GCM',
    kek: kek.id,
    iv: iv.toString('base64url'),
    tag: cipher.getAuthTag().toString('base64url'),
    ciphertext: ciphertext.toString('base64url'),
  };
}

/**
 * Decrypts an envelope with whichever of `keks` encrypted it. Throws ConfigError when none
 * of them is that KEK (a configuration problem: the key was removed from KEY_ENCRYPTION_KEY
 * too early), KeyDecryptionError when authentication fails.
 */
export function decryptJson(envelope: Envelope, associatedData: string, keks: readonly KeyEncryptionKey[]): unknown {
  const candidates = keks.filter((kek) => kek.id === envelope.kek);
  if (candidates.length === 0) {
    throw new ConfigError(`encrypted with key-encryption key ${envelope.kek}, which is not configured (KEY_ENCRYPTION_KEY)`);
  }
  const iv = Buffer.from(envelope.iv, 'base64url');
  const tag = Buffer.from(envelope.tag, 'base64url');
  if (iv.length !== IV_BYTES || tag.length !== TAG_BYTES) throw new KeyDecryptionError('malformed envelope (IV or tag length)');
  // Ids are 32-bit prefixes; on the unlikely collision every matching KEK is tried.
  for (const kek of candidates) {
    try {
      const decipher = createDecipheriv(CIPHER, kek.key, iv, { authTagLength: TAG_BYTES });
      decipher.setAAD(Buffer.from(associatedData, 'utf8'));
      decipher.setAuthTag(tag);
      const plaintext = Buffer.concat([decipher.update(Buffer.from(envelope.ciphertext, 'base64url')), decipher.final()]);
      return JSON.parse(plaintext.toString('utf8')) as unknown;
    } catch {
      // Authentication failed under this KEK; try the next candidate.
    }
  }
  throw new KeyDecryptionError('authentication failed: wrong key-encryption key, altered ciphertext or wrong associated data');
}
