import { hkdfSync } from 'node:crypto';
import type { Sealer } from './adapter.js';
import { decryptJson, encryptJson, envelopeSchema, keyEncryptionKey, type KeyEncryptionKey } from '../security/key-encryption.js';

/**
 * The adapter's sealer: AES-256-GCM (key-encryption.ts) under keys derived with HKDF from the
 * cookie keys, which with an https issuer come from the environment, not the database. The
 * newest key seals; every current one opens (sealed values live minutes, cookie keys are kept
 * for a session's lifetime after a rotation). `purpose` is the associated data.
 */
export function cookieKeySealer(cookieKeys: () => readonly string[]): Sealer {
  const derived = new Map<string, KeyEncryptionKey>();
  const keyFor = (cookieKey: string) => {
    let key = derived.get(cookieKey);
    if (!key) {
      key = keyEncryptionKey(Buffer.from(hkdfSync('sha256', cookieKey, '', 'group-idp adapter sealing', 32)));
      derived.set(cookieKey, key);
    }
    return key;
  };
  return {
    seal(value, purpose) {
      return encryptJson(value, purpose, keyFor(cookieKeys()[0]!));
    },
    open(sealed, purpose) {
      const envelope = envelopeSchema.safeParse(sealed);
      if (!envelope.success) return undefined;
      try {
        const value = decryptJson(envelope.data, purpose, cookieKeys().map(keyFor));
        return typeof value === 'string' ? value : undefined;
      } catch {
        return undefined;
      }
    },
  };
}
