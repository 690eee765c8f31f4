import { describe, expect, it } from 'vitest';
import { passwordSchema, isCommonPassword, hashPassword, verifyPassword, passwordNeedsRehash } from '../../src/accounts/passwords.js';

describe('password policy', () => {
  it('accepts 8 to 256 characters of any Unicode without composition rules', () => {
    expect(passwordSchema.safeParse('correct horse battery').success).toBe(true);
    expect(passwordSchema.safeParse('パスワードは長いほうがいい').success).toBe(true);
    expect(passwordSchema.safeParse('aaaaaaab').success).toBe(true);
    expect(passwordSchema.safeParse('x'.repeat(256)).success).toBe(true);
  });

  it('rejects too short, too long and common passwords with a plain message', () => {
    expect(passwordSchema.safeParse('short').error?.issues[0]?.message).toContain('at least 8');
    expect(passwordSchema.safeParse('x'.repeat(257)).error?.issues[0]?.message).toContain('at most 256');
    for (const common of ['password', 'PASSWORD1', '12345678', 'iloveyou', 'qwertyuiop']) {
      expect(isCommonPassword(common), common).toBe(true);
      expect(passwordSchema.safeParse(common).error?.issues[0]?.message).toContain('most common');
    }
  });
});

describe('password hashing', () => {
  it('hashes with argon2id at the OWASP parameters and verifies', async () => {
    const hash = await hashPassword('correct horse battery');
    expect(hash).toMatch(/^\$argon2id\$v=19\$m=19456,p=1,t=2\$/);
    expect(await verifyPassword(hash, 'correct horse battery')).toBe(true);
    expect(await verifyPassword(hash, 'correct horse batterY')).toBe(false);
    expect(passwordNeedsRehash(hash)).toBe(false);
  });

  it('asks for a rehash of hashes made with weaker parameters', async () => {
    const argon2 = (await import('argon2')).default;
    const weak = await argon2.hash('correct horse battery', { type: argon2.argon2id, memoryCost: 4096, timeCost: 1, parallelism: 1 });
    expect(passwordNeedsRehash(weak)).toBe(true);
    expect(await verifyPassword(weak, 'correct horse battery')).toBe(true);
  });

  it('treats a malformed stored hash as a mismatch, not an error', async () => {
    expect(await verifyPassword('not-a-hash', 'anything')).toBe(false);
  });
});
