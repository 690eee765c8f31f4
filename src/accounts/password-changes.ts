import type { Database } from '../db/index.js';
import { endOtherAccountSessions } from './account-sessions.js';
import { endSessionsAndRevokeTokens } from './connections.js';
import { redeemLinkToken, spendOtherLinkTokens, type LinkFailure } from './one-time-links.js';
import { storePasswordHash } from './store.js';

export type PasswordResetResult = { status: 'reset'; accountId: string; email: string } | { status: LinkFailure };

/**
 * Sets a new password from a reset link, in one transaction: the link is spent, the
 * account's sign-in sessions (provider and account pages) end and its refresh and access
 * tokens are revoked. `passwordHash` is made beforehand (argon2 outside the transaction).
 */
export async function completePasswordReset(db: Database, token: unknown, passwordHash: string): Promise<PasswordResetResult> {
  return db.transaction(async (tx) => {
    const link = await redeemLinkToken(tx, token, 'reset_password');
    if (link.status !== 'valid') return link;
    await storePasswordHash(tx, link.accountId, passwordHash);
    await spendOtherLinkTokens(tx, link.accountId, ['reset_password']);
    await endSessionsAndRevokeTokens(tx, link.accountId);
    await endOtherAccountSessions(tx, link.accountId, undefined);
    return { status: 'reset', accountId: link.accountId, email: link.email } as const;
  });
}

/**
 * Changes the password of a signed-in person (current password already checked): as after
 * a reset, every other session ends and tokens are revoked; the account page the person is
 * using (`keepAccountSession`) stays signed in.
 */
export async function changePassword(db: Database, accountId: string, passwordHash: string, keepAccountSession: string): Promise<void> {
  await db.transaction(async (tx) => {
    await storePasswordHash(tx, accountId, passwordHash);
    await spendOtherLinkTokens(tx, accountId, ['reset_password']);
    await endSessionsAndRevokeTokens(tx, accountId);
    await endOtherAccountSessions(tx, accountId, keepAccountSession);
  });
}
