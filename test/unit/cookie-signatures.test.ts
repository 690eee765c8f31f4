import Keygrip from 'keygrip';
import { describe, expect, it } from 'vitest';
import { cookieSignatures } from '../../src/security/cookie-signatures.js';

/*
 * Performance issue: cookie signatures checked with timingSafeEqual instead of keygrip's
 * double-HMAC compare, in keygrip's exact format, so cookies signed before still verify.
 */

const keys = ['newest-cookie-key-0123456789abcdef', 'older-cookie-key-0123456789abcdef', 'oldest-cookie-key-0123456789abcd'];
const values = ['_session=abc', '_interaction=Zx9_-.', 'idp.csrf=s3cr3t+/=', '', 'ünïcödé=✓'];

describe('cookie signatures', () => {
  const ours = cookieSignatures(keys) as unknown as Keygrip;
  const keygrip = new Keygrip(keys);

  it.each(values)('signs %j exactly as keygrip does, with the newest key', (value) => {
    expect(ours.sign(value)).toBe(keygrip.sign(value));
    expect(ours.sign(value)).toBe(new Keygrip([keys[0]!]).sign(value));
  });

  it.each(values)('tells which key signed %j, as keygrip does', (value) => {
    for (const [i, key] of keys.entries()) {
      const signature = new Keygrip([key]).sign(value);
      expect(ours.index(value, signature)).toBe(i);
      expect(ours.verify(value, signature)).toBe(true);
    }
  });

  it('refuses a signature by another key, a changed value, a cut or lengthened signature', () => {
    const signature = ours.sign('_session=abc');
    expect(ours.index('_session=abc', new Keygrip(['someone-elses-key']).sign('_session=abc'))).toBe(-1);
    expect(ours.index('_session=abd', signature)).toBe(-1);
    expect(ours.index('_session=abc', signature.slice(0, -1))).toBe(-1);
    expect(ours.index('_session=abc', `${signature}A`)).toBe(-1);
    expect(ours.index('_session=abc', '')).toBe(-1);
    expect(ours.verify('_session=abc', `${signature.slice(0, -1)}${signature.endsWith('A') ? 'B' : 'A'}`)).toBe(false);
  });

  it('needs at least one key', () => {
    expect(() => cookieSignatures([])).toThrow(/cookie keys/);
  });
});
