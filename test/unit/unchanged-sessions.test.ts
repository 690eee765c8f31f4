import { describe, expect, it } from 'vitest';
import { unchangedSessions } from '../../src/oidc/unchanged-sessions.js';

describe('session saves that would change nothing', () => {
  const session = { accountId: 'a1', authorizations: { c1: { sid: 's1', grantId: 'g1' } }, loginTs: 100, exp: 5000, uid: 'u1' };

  it('are the ones that only slide the expiry by less than a minute, whatever the order of keys', () => {
    const known = unchangedSessions();
    // As jsonb returns it: keys in another order.
    known.read('k', { uid: 'u1', exp: 5000, loginTs: 100, authorizations: { c1: { grantId: 'g1', sid: 's1' } }, accountId: 'a1' });
    expect(known.wouldNotChange('k', { ...session, exp: 5030 })).toBe(true);
    expect(known.wouldNotChange('k', { ...session, exp: 5060 })).toBe(false);
    expect(known.wouldNotChange('k', { ...session, exp: 4990 })).toBe(false);
  });

  it('are never a session not read or written here, a changed one, or one ended here', () => {
    const known = unchangedSessions();
    expect(known.wouldNotChange('k', session)).toBe(false);
    known.read('k', session);
    expect(known.wouldNotChange('k', { ...session, authorizations: { c1: { sid: 's1', grantId: 'g2' } } })).toBe(false);
    expect(known.wouldNotChange('k', { ...session, acr: 'urn:level:2' })).toBe(false);
    known.forget('k');
    expect(known.wouldNotChange('k', session)).toBe(false);
  });
});
