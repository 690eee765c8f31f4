import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { classifyLegacyHash, verifyLegacyHash } from '../../src/accounts/legacy-hashes.js';
import { legacyHashes } from '../helpers/legacy-hashes.js';

describe('imported password hashes', () => {
  it('verify the right password and refuse a wrong one, in every accepted notation', async () => {
    const hashes = await legacyHashes('correct horse battery staple');
    for (const [notation, hash] of Object.entries(hashes)) {
      expect(classifyLegacyHash(hash), notation).toMatchObject({ accepted: true });
      expect(await verifyLegacyHash(hash, 'correct horse battery staple'), notation).toBe(true);
      expect(await verifyLegacyHash(hash, 'correct horse battery stapl'), notation).toBe(false);
      expect(await verifyLegacyHash(hash, ''), notation).toBe(false);
    }
  });

  it('keep no fast or unsalted digest as a password', () => {
    const password = 'hunter2';
    for (const weak of [
      createHash('md5').update(password).digest('hex'),
      createHash('sha1').update(password).digest('hex'),
      createHash('sha256').update(password).digest('hex'),
      `{SHA}${createHash('sha1').update(password).digest('base64')}`,
      '$1$saltsalt$qjXMvbEw8oaL.CzflDugX/',
      'md5$salt$' + createHash('md5').update(`salt${password}`).digest('hex'),
      '$2b$04$' + 'a'.repeat(53), // bcrypt at cost 4: a work factor too small to matter
      '$pbkdf2-sha256$i=1000$c2FsdA$' + 'A'.repeat(43),
    ]) {
      expect(classifyLegacyHash(weak), weak).toMatchObject({ accepted: false, weak: true });
    }
  });

  it('refuse notations they do not know, so a typo is a reported row and not a silent lock-out', () => {
    for (const unknown of [
      'plaintext password',
      '$5$rounds=5000$salt$hash',
      '$argon2d$v=19$m=1,t=1,p=1$a$b',
      '$scrypt$ln=14,r=8,p=1$!!$!!',
    ]) {
      expect(classifyLegacyHash(unknown), unknown).toMatchObject({ accepted: false, weak: false });
    }
  });
});
