import type { Database, Queryable } from '../db/index.js';
import { Conflict } from '../errors.js';
import { redeemLinkToken, spendOtherLinkTokens, type LinkFailure } from './one-time-links.js';
import { markEmailVerified, replaceVerifiedEmail } from './store.js';

/** Thrown inside a transaction to roll it back (the link stays unspent) and report why. */
class Abandon<O extends string> extends Error {
  constructor(readonly outcome: O) {
    super(outcome);
  }
}

/** Runs `work` in a transaction; an Abandon rolls it back and becomes its outcome. */
async function abandonable<T, O extends string>(db: Database, work: (tx: Queryable) => Promise<T>): Promise<T | { status: O }> {
  try {
    return await db.transaction(work);
  } catch (error) {
    if (error instanceof Abandon) return { status: error.outcome as O };
    throw error;
  }
}

export type VerificationResult = { status: 'verified'; accountId: string; email: string } | { status: LinkFailure };

/**
 * Opens a verification link: the address becomes verified if it is still the account's
 * address (a link for an address since replaced verifies nothing).
 */
export async function confirmEmailVerification(db: Database, token: unknown): Promise<VerificationResult> {
  return abandonable<VerificationResult, LinkFailure>(db, async (tx) => {
    const link = await redeemLinkToken(tx, token, 'verify_email');
    if (link.status !== 'valid') return link;
    if (!(await markEmailVerified(tx, link.accountId, link.email))) throw new Abandon('invalid');
    await spendOtherLinkTokens(tx, link.accountId, ['verify_email']);
    return { status: 'verified', accountId: link.accountId, email: link.email } as const;
  });
}

export type EmailChangeResult =
  { status: 'changed'; accountId: string; previousEmail: string; email: string } | { status: LinkFailure | 'conflict' };

/**
 * Opens an email-change link: the new address, now proven, replaces the old one. Links sent
 * to the old address (verification, password reset) stop working.
 */
export async function confirmEmailChange(db: Database, token: unknown): Promise<EmailChangeResult> {
  return abandonable<EmailChangeResult, LinkFailure | 'conflict'>(db, async (tx) => {
    const link = await redeemLinkToken(tx, token, 'change_email');
    if (link.status !== 'valid') return link;
    const { rows } = await tx.query<{ email: string }>('SELECT email FROM accounts WHERE id = $1 FOR UPDATE', [link.accountId]);
    const previousEmail = rows[0]?.email;
    if (previousEmail === undefined) throw new Abandon('invalid');
    try {
      await replaceVerifiedEmail(tx, link.accountId, link.email);
    } catch (error) {
      if (error instanceof Conflict) throw new Abandon('conflict');
      throw error;
    }
    await spendOtherLinkTokens(tx, link.accountId, ['verify_email', 'change_email', 'reset_password']);
    return { status: 'changed', accountId: link.accountId, previousEmail, email: link.email } as const;
  });
}
