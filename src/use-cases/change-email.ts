import { emailKey } from '../accounts/email-key.js';
import {
  credentialLinkPurposes,
  issueLinkToken,
  redeemLinkToken,
  spendOtherLinkTokens,
  type LinkFailure,
} from '../accounts/one-time-links.js';
import { emailSchema, findAccountByEmail, markEmailVerified, replaceVerifiedEmail, type Account } from '../accounts/store.js';
import { recordAuditEvent } from '../audit/log.js';
import type { Database, Queryable } from '../db/index.js';
import { Conflict, InvalidInput } from '../errors.js';
import type { Language } from '../i18n/catalogue.js';
import { mailRequester } from '../security/throttle.js';
import { parseOrThrow } from '../validation.js';
import { auditActor, type Actor, type WorkflowDeps } from './deps.js';
import { signOutEverywhere } from './end-sessions.js';
import { servicesGivenTheEmail, tellConnectedServices } from './tell-services.js';
import { mailPerson } from './mail-person.js';

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

/** Puts a proven address on the account; another account holding it by now abandons the change. */
async function replaceEmailOrAbandon(tx: Queryable, accountId: string, email: string): Promise<void> {
  try {
    await replaceVerifiedEmail(tx, accountId, email);
  } catch (error) {
    if (error instanceof Conflict) throw new Abandon('conflict');
    throw error;
  }
}

/** RISC identifier-changed, to the services that were given the address (only they hold it). */
async function tellOfNewAddress(deps: WorkflowDeps, tx: Queryable, accountId: string, email: string): Promise<void> {
  const clientIds = await servicesGivenTheEmail(tx, accountId);
  await tellConnectedServices(deps, tx, { accountId, name: 'identifier-changed', clientIds, payload: { 'new-value': email } });
}

/**
 * Asks to move an account to another address. The page has checked the current password (or
 * an administrator asks). The current address is told at once, with a link that cancels the
 * change (and, once it went through, restores the address and signs out everywhere) for
 * EMAIL_CHANGE_REVERT_TTL. The new address gets the link that makes the change; when it
 * already has an account, a change is recorded all the same but its link is never sent, and
 * that address's owner is told instead, so the answer says nothing about other accounts.
 */
export async function requestEmailChange(
  deps: WorkflowDeps,
  request: { account: Account; newEmail: string; actor: Actor; language: Language },
): Promise<void> {
  const { account, language } = request;
  const newEmail = parseOrThrow(emailSchema, request.newEmail);
  if (emailKey(newEmail) === emailKey(account.email)) throw new InvalidInput('that is already the address of this account');
  if (request.actor.kind === 'self') await deps.throttle.consumeAccountMailRequest(account.id);
  const requester = request.actor.kind === 'self' ? mailRequester.owner(account.id) : mailRequester.admin();

  await mailPerson(deps, {
    purpose: 'email_change_requested',
    link: 'revert_email_change',
    recipient: { to: account.email, accountId: account.id, language },
    requester,
  });
  const owner = await findAccountByEmail(deps.db, newEmail);
  const asker = request.actor.kind === 'self' ? mailRequester.account(account.id) : mailRequester.admin();
  if (owner) {
    await issueLinkToken(deps.db, {
      accountId: account.id,
      purpose: 'change_email',
      email: newEmail,
      ttlSeconds: deps.config.selfService.emailVerificationTtl,
      replacePrevious: true,
    });
    await mailPerson(deps, {
      purpose: 'change_to_existing',
      recipient: { to: owner.email, accountId: owner.id, language },
      requester: asker,
    });
  } else {
    await mailPerson(deps, {
      purpose: 'change_email',
      link: 'change_email',
      recipient: { to: newEmail, accountId: account.id, language },
      requester: asker,
    });
  }
  await recordAuditEvent(deps.db, { event: 'email.change_requested', outcome: 'success', ...auditActor(request.actor, account.id) });
}

export type EmailChangeResult =
  { status: 'changed'; accountId: string; previousEmail: string; email: string } | { status: LinkFailure | 'conflict' };

/**
 * Opens an email-change link: the new address, now proven, replaces the old one. Every other
 * pending link (verification, change, reset) stops working. The previous address is told,
 * with another link that restores it.
 */
export async function confirmEmailChange(
  deps: WorkflowDeps,
  request: { token: unknown; ip: string | null; language: Language },
): Promise<EmailChangeResult> {
  const result = await abandonable<EmailChangeResult, LinkFailure | 'conflict'>(deps.db, async (tx) => {
    const link = await redeemLinkToken(tx, request.token, 'change_email');
    if (link.status !== 'valid') return link;
    const { rows } = await tx.query<{ email: string }>('SELECT email FROM accounts WHERE id = $1 FOR UPDATE', [link.accountId]);
    const previousEmail = rows[0]?.email;
    if (previousEmail === undefined) throw new Abandon('invalid');
    await replaceEmailOrAbandon(tx, link.accountId, link.email);
    await spendOtherLinkTokens(tx, link.accountId, credentialLinkPurposes);
    await tellOfNewAddress(deps, tx, link.accountId, link.email);
    await recordAuditEvent(tx, { event: 'email.changed', outcome: 'success', actor: link.accountId, ip: request.ip });
    return { status: 'changed', accountId: link.accountId, previousEmail, email: link.email } as const;
  });
  if (result.status === 'changed') {
    await mailPerson(deps, {
      purpose: 'email_changed',
      link: 'revert_email_change',
      recipient: { to: result.previousEmail, accountId: result.accountId, language: request.language },
      requester: mailRequester.owner(result.accountId),
    });
  }
  return result;
}

export type EmailRevertResult =
  { status: 'cancelled' | 'restored'; accountId: string; email: string } | { status: LinkFailure | 'conflict' };

/**
 * Opens the link mailed to the previous address. A change still pending is cancelled (its
 * link stops working). A change that went through is undone: the previous address comes
 * back, proven by this very link, every pending link is void, services are told, and every
 * session of the account ends, so whoever made the change is signed out.
 */
export async function revertEmailChange(deps: WorkflowDeps, request: { token: unknown; ip: string | null }): Promise<EmailRevertResult> {
  return abandonable<EmailRevertResult, LinkFailure | 'conflict'>(deps.db, async (tx) => {
    const link = await redeemLinkToken(tx, request.token, 'revert_email_change');
    if (link.status !== 'valid') return link;
    const { rows } = await tx.query<{ email: string }>('SELECT email FROM accounts WHERE id = $1 FOR UPDATE', [link.accountId]);
    const current = rows[0]?.email;
    if (current === undefined) throw new Abandon('invalid');
    const stillTheAddress = emailKey(current) === emailKey(link.email);
    if (stillTheAddress) {
      await spendOtherLinkTokens(tx, link.accountId, ['change_email']);
      // The link proves the person reads this address.
      await markEmailVerified(tx, link.accountId, link.email);
    } else {
      await replaceEmailOrAbandon(tx, link.accountId, link.email);
      await spendOtherLinkTokens(tx, link.accountId, credentialLinkPurposes);
      await tellOfNewAddress(deps, tx, link.accountId, link.email);
      await signOutEverywhere(deps, tx, link.accountId);
    }
    await recordAuditEvent(tx, {
      event: 'email.change_reverted',
      outcome: 'success',
      actor: link.accountId,
      ip: request.ip,
      details: { restored: !stillTheAddress },
    });
    return { status: stillTheAddress ? 'cancelled' : 'restored', accountId: link.accountId, email: link.email } as const;
  });
}

export type VerificationResult = { status: 'verified'; accountId: string; email: string } | { status: LinkFailure };

/**
 * Opens a verification link: the address becomes verified if it is still the account's
 * address (a link for an address since replaced verifies nothing).
 */
export async function confirmEmailVerification(
  deps: WorkflowDeps,
  request: { token: unknown; ip: string | null },
): Promise<VerificationResult> {
  return abandonable<VerificationResult, LinkFailure>(deps.db, async (tx) => {
    const link = await redeemLinkToken(tx, request.token, 'verify_email');
    if (link.status !== 'valid') return link;
    if (!(await markEmailVerified(tx, link.accountId, link.email))) throw new Abandon('invalid');
    await spendOtherLinkTokens(tx, link.accountId, ['verify_email']);
    await recordAuditEvent(tx, { event: 'email.verified', outcome: 'success', actor: link.accountId, ip: request.ip });
    return { status: 'verified', accountId: link.accountId, email: link.email } as const;
  });
}
