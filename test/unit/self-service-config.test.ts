import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';

describe('self-service settings', () => {
  it('default to the outbox, no privacy links, and safe lifetimes and limits', () => {
    const config = loadConfig({ ISSUER: 'https://id.example.com', ALLOW_DATABASE_HELD_KEYS: 'true' });
    expect(config.mail).toEqual({ smtpUrl: undefined, from: 'Group ID <no-reply@id.example.com>', pollSeconds: 1, maxAgeSeconds: 86400 });
    expect(config.privacy).toEqual({ policyUrl: undefined, contact: undefined });
    expect(config.selfService).toEqual({
      emailVerificationTtl: 259200,
      passwordResetTtl: 3600,
      accountSessionTtl: 1800,
      emailChangeRevertTtl: 14 * 86400,
    });
    expect(config.rateLimits).toMatchObject({
      mailPerAccountPerHour: 5,
      mailPerRecipientPerRequesterPerHour: 3,
      mailPerRecipientPerHour: 10,
      passwordResetsPerIpPerHour: 20,
    });
  });

  it('accept an SMTP URL, a policy URL and a contact that is an address or a URL', () => {
    const config = loadConfig({
      SMTP_URL: 'smtps://user:secret@mail.example.com:465',
      PRIVACY_POLICY_URL: 'https://example.com/privacy',
      PRIVACY_CONTACT: 'privacy@example.com',
    });
    expect(config.mail.smtpUrl).toBe('smtps://user:secret@mail.example.com:465');
    expect(config.privacy).toEqual({ policyUrl: 'https://example.com/privacy', contact: 'privacy@example.com' });
    expect(loadConfig({ PRIVACY_CONTACT: 'https://example.com/contact' }).privacy.contact).toBe('https://example.com/contact');
  });

  it('refuse bad values, naming the variable', () => {
    const bad: Record<string, string>[] = [
      { SMTP_URL: 'http://mail.example.com' },
      { PRIVACY_POLICY_URL: 'javascript:alert(1)' },
      { PRIVACY_POLICY_URL: 'not a url' },
      { PRIVACY_CONTACT: 'someone' },
      { PRIVACY_CONTACT: 'javascript:alert(1)' },
      { PASSWORD_RESET_TTL: '0' },
      { MAIL_PER_ACCOUNT_PER_HOUR: 'many' },
    ];
    for (const env of bad) expect(() => loadConfig(env), JSON.stringify(env)).toThrow(Object.keys(env)[0]!);
  });
});
