import { Secret, TOTP } from 'otpauth';
import { describe, expect, it } from 'vitest';
import { checkChallenge, issueChallenge } from '../../src/factors/challenges.js';
import { acrLevels, levelOf, methodsOf, satisfies } from '../../src/factors/levels.js';
import { recoveryCodeSchema } from '../../src/factors/recovery-codes.js';
import { matchingStep, newTotpSecret, totpCodeSchema, totpUri } from '../../src/factors/totp.js';
import { reportedAcr, requiredLevel } from '../../src/oidc/authentication-level.js';
import { networkPrefix } from '../../src/security/client-address.js';

describe('authentication levels', () => {
  it('order one factor < two factors < phishing-resistant, each satisfying the ones below', () => {
    expect(satisfies(acrLevels.phishingResistant, acrLevels.twoFactors)).toBe(true);
    expect(satisfies(acrLevels.twoFactors, acrLevels.oneFactor)).toBe(true);
    expect(satisfies(acrLevels.oneFactor, acrLevels.twoFactors)).toBe(false);
    expect(satisfies(acrLevels.twoFactors, acrLevels.phishingResistant)).toBe(false);
    expect(satisfies(undefined, acrLevels.oneFactor)).toBe(false);
    expect(satisfies('urn:example:unknown', acrLevels.oneFactor)).toBe(false);
  });

  it('follow from the methods used (RFC 8176), with mfa when two factors were used', () => {
    expect(methodsOf(['pwd'])).toEqual(['pwd']);
    expect(methodsOf(['pwd', 'otp'])).toEqual(['pwd', 'otp', 'mfa']);
    expect(methodsOf(['hwk'])).toEqual(['hwk', 'mfa']);
    expect(methodsOf(['pwd', 'otp', 'mfa', 'otp'])).toEqual(['pwd', 'otp', 'mfa']);
    expect(levelOf(['pwd'])).toBe(acrLevels.oneFactor);
    expect(levelOf(['pwd', 'otp', 'mfa'])).toBe(acrLevels.twoFactors);
    expect(levelOf(['swk', 'mfa'])).toBe(acrLevels.phishingResistant);
  });

  it('required: the weakest acr_values entry a service accepts, raised by an administrator requirement; unknown values ignored', () => {
    expect(requiredLevel({})).toBeUndefined();
    expect(requiredLevel({ acrValues: `${acrLevels.phishingResistant} ${acrLevels.twoFactors}` })).toBe(acrLevels.twoFactors);
    expect(requiredLevel({ acrValues: 'urn:example:gold' })).toBeUndefined();
    expect(requiredLevel({ acrValues: acrLevels.oneFactor, clientRequiredAcr: acrLevels.twoFactors })).toBe(acrLevels.twoFactors);
    expect(requiredLevel({ acrValues: acrLevels.phishingResistant, clientRequiredAcr: acrLevels.twoFactors })).toBe(
      acrLevels.phishingResistant,
    );
  });

  it('reported: the strongest requested level reached, else the level reached', () => {
    expect(reportedAcr(acrLevels.phishingResistant, { acrValues: acrLevels.twoFactors })).toBe(acrLevels.twoFactors);
    expect(reportedAcr(acrLevels.phishingResistant, { acrValues: `${acrLevels.oneFactor} ${acrLevels.twoFactors}` })).toBe(
      acrLevels.twoFactors,
    );
    expect(reportedAcr(acrLevels.twoFactors, {})).toBe(acrLevels.twoFactors);
    expect(reportedAcr(acrLevels.oneFactor, { acrValues: acrLevels.twoFactors })).toBe(acrLevels.oneFactor);
    expect(reportedAcr(undefined, { acrValues: acrLevels.oneFactor })).toBeUndefined();
  });
});

describe('WebAuthn challenges', () => {
  const keys = { cookieKeys: () => ['new-key', 'old-key'] };

  it('verify for their binding until they expire, under any current cookie key', () => {
    const challenge = issueChallenge(keys, 'sign-in\u0000a', 600);
    expect(Buffer.from(challenge, 'base64url').length).toBeGreaterThanOrEqual(32);
    expect(checkChallenge(keys, challenge, 'sign-in\u0000a')).toBeInstanceOf(Date);
    expect(checkChallenge(keys, challenge, 'sign-in\u0000b')).toBeUndefined();
    expect(checkChallenge({ cookieKeys: () => ['newer', 'new-key'] }, challenge, 'sign-in\u0000a')).toBeInstanceOf(Date);
    expect(checkChallenge({ cookieKeys: () => ['other'] }, challenge, 'sign-in\u0000a')).toBeUndefined();
    expect(checkChallenge(keys, challenge, 'sign-in\u0000a', Date.now() + 601_000)).toBeUndefined();
  });

  it('refuse any altered byte and any malformed value', () => {
    const challenge = issueChallenge(keys, 'x', 600);
    const bytes = Buffer.from(challenge, 'base64url');
    for (let index = 0; index < bytes.length; index += 1) {
      const altered = Buffer.from(bytes);
      altered[index] = altered[index]! ^ 1;
      expect(checkChallenge(keys, altered.toString('base64url'), 'x'), `byte ${index}`).toBeUndefined();
    }
    for (const value of ['', 'a', `${challenge}A`, challenge.slice(1), '%'.repeat(48)])
      expect(checkChallenge(keys, value, 'x')).toBeUndefined();
  });
});

describe('authenticator-app codes', () => {
  it('match within one 30-second step either way, by the step they belong to', () => {
    const secret = newTotpSecret();
    expect(secret).toMatch(/^[A-Z2-7]{32}$/);
    const now = Date.now();
    const step = Math.floor(now / 30_000);
    const code = (offset: number) => TOTP.generate({ secret: Secret.fromBase32(secret), timestamp: now + offset * 30_000 });
    expect(matchingStep(secret, code(0), now)).toBe(step);
    expect(matchingStep(secret, code(-1), now)).toBe(step - 1);
    expect(matchingStep(secret, code(1), now)).toBe(step + 1);
    for (const offset of [-2, 2])
      if (![code(-1), code(0), code(1)].includes(code(offset))) expect(matchingStep(secret, code(offset), now)).toBeUndefined();
  });

  it('are six digits (spaces allowed); the URI carries the issuer and account for the app', () => {
    expect(totpCodeSchema.safeParse('123 456').data).toBe('123456');
    for (const bad of ['12345', '1234567', '12a456', '１２３４５６']) expect(totpCodeSchema.safeParse(bad).success, bad).toBe(false);
    expect(totpUri('JBSWY3DPEHPK3PXP', { label: 'ada@example.test', issuer: 'Group ID' })).toBe(
      'otpauth://totp/Group%20ID:ada%40example.test?issuer=Group%20ID&secret=JBSWY3DPEHPK3PXP&algorithm=SHA1&digits=6&period=30',
    );
  });
});

describe('recovery codes as typed', () => {
  it('forgive case, spaces, hyphens and look-alike letters, and refuse the wrong length or alphabet', () => {
    expect(recoveryCodeSchema.parse('abcd-efgh-jkmn')).toBe('ABCDEFGHJKMN');
    expect(recoveryCodeSchema.parse(' ab cd ef gh jk mn ')).toBe('ABCDEFGHJKMN');
    expect(recoveryCodeSchema.parse('O1LI-0000-0000')).toBe('011100000000');
    for (const bad of ['ABCD-EFGH', 'ABCD-EFGH-JKMN-P', 'ABCD-EFGH-JKM!', 'ÄBCD-EFGH-JKMN', 'UBCD-EFGH-JKMN']) {
      expect(recoveryCodeSchema.safeParse(bad).success, bad).toBe(false);
    }
  });
});

describe('network prefixes for the session list', () => {
  it('keep an IPv4 /24 and an IPv6 /48, never the address', () => {
    expect(networkPrefix('203.0.113.77')).toBe('203.0.113.0/24');
    expect(networkPrefix('::ffff:198.51.100.9')).toBe('198.51.100.0/24');
    expect(networkPrefix('2001:db8:abcd:12::9')).toBe('2001:db8:abcd::/48');
    expect(networkPrefix('not an address')).toBeUndefined();
  });
});
