import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Client secrets are stored as SHA-256 digests, so a database dump alone does not reveal
 * them. The protocol allows it for client_secret_basic/post, where the server only checks
 * the secret; we offer no method that needs it back (client_secret_jwt and HS* algorithms
 * are disabled). A fast hash is enough: the secrets are 256 random bits, not passwords.
 */
const PREFIX = 'sha256:';

export function newClientSecret(): string {
  return randomBytes(32).toString('base64url');
}

const digest = (secret: string) => createHash('sha256').update(secret, 'utf8').digest();

export function hashClientSecret(secret: string): string {
  return PREFIX + digest(secret).toString('base64url');
}

export function isHashedClientSecret(stored: string): boolean {
  return stored.startsWith(PREFIX);
}

/** Constant-time check of a presented secret against the stored digest. */
export function clientSecretMatches(stored: string | undefined, presented: string | undefined): boolean {
  if (!stored || typeof presented !== 'string' || !isHashedClientSecret(stored)) return false;
  const expected = Buffer.from(stored.slice(PREFIX.length), 'base64url');
  const actual = digest(presented);
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}
