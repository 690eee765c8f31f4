import { createHash } from 'node:crypto';
import { RateLimiterPostgres, RateLimiterRes } from 'rate-limiter-flexible';
import { emailKey } from '../accounts/email-key.js';
import type { RateLimits } from '../config.js';
import type { Database } from '../db/index.js';
import { TooManyAttempts } from '../errors.js';
import { limitSubject } from './client-address.js';
import { forgetAndGiveBack, takeInTurn, type Counter, type Taken } from './counters.js';

// Keys are hashed so the counters table holds no email or IP addresses.
const keyFor = (kind: string, value: string) => `${kind}:${createHash('sha256').update(value).digest('base64url')}`;
const addressKey = (email: string) => keyFor('email', emailKey(email));
const ipKey = (ip: string) => keyFor('ip', limitSubject(ip));

/**
 * The limiter's statements go through `db.query`, which names them (each connection parses
 * and plans them once) on a Postgres server and leaves them unnamed on the embedded
 * database, whose pool connections share one session where names would collide. Their
 * plans are by primary key, the same at any table size.
 */
function storeClient(db: Database) {
  return { query: (query: { text: string; values?: unknown[] }) => db.query(query.text, query.values ?? []) };
}

function limiter(db: Database, keyPrefix: string, points: number, durationSeconds: number) {
  return new RateLimiterPostgres({
    storeClient: storeClient(db),
    storeType: 'pool',
    tableName: 'rate_limits',
    tableCreated: true,
    clearExpiredByTimeout: false,
    keyPrefix,
    points,
    duration: durationSeconds,
  });
}

function secondsUntil(res: Pick<RateLimiterRes, 'msBeforeNext'>): number {
  return Math.ceil(Math.max(res.msBeforeNext, 1000) / 1000);
}

/**
 * Counts one attempt in one statement (rate-limiter-flexible's upsert increments and returns
 * the new count): of concurrent attempts, exactly `points` get through. `allowed` is false
 * once the limit was reached; `res` holds the count either way.
 */
async function take(limiter: RateLimiterPostgres, key: string): Promise<{ res: RateLimiterRes; allowed: boolean }> {
  try {
    return { res: await limiter.consume(key), allowed: true };
  } catch (rejection) {
    if (!(rejection instanceof RateLimiterRes)) throw rejection;
    return { res: rejection, allowed: false };
  }
}

/** Counts an attempt against every limiter at once; throws TooManyAttempts when any is exhausted. */
async function takeAll(counters: [RateLimiterPostgres, string][]): Promise<RateLimiterRes[]> {
  const taken = await Promise.all(counters.map(([limiter, key]) => take(limiter, key)));
  const refused = taken.filter((result) => !result.allowed);
  if (refused.length) throw new TooManyAttempts(Math.max(...refused.map((result) => secondsUntil(result.res))));
  return taken.map((result) => result.res);
}

/**
 * takeInTurn, refused as takeAll is: TooManyAttempts when a counter of either turn is past its
 * limit (a refusal in the first turn takes nothing in the second).
 */
async function takeOrRefuse(db: Database, first: Counter[], then: Counter[] = []): Promise<[Taken[], Taken[]]> {
  const turns = await takeInTurn(db, first, then);
  for (const taken of turns) {
    const refused = taken.filter((result) => !result.allowed);
    if (refused.length) throw new TooManyAttempts(Math.max(...refused.map(secondsUntil)));
  }
  return turns;
}

/** Who caused a message: the limit counts per recipient and requester. */
export interface MailRequester {
  key: string;
  /**
   * The recipient's own signed-in account, acting on itself: not subject to the per-recipient
   * cap, so no stranger can use up the allowance a person needs for their own notices.
   */
  isRecipientsOwnAccount: boolean;
  /**
   * A notice of a change the person made to their own sign-in factors: each one must reach
   * them (they are how a takeover is noticed), so it has a limit of its own, much higher
   * than for link mail, instead of the per-requester one.
   */
  securityNotice?: boolean;
}

export const mailRequester = {
  owner: (accountId: string): MailRequester => ({ key: `account:${accountId}`, isRecipientsOwnAccount: true }),
  ownSecurityChange: (accountId: string): MailRequester => ({
    key: `account:${accountId}`,
    isRecipientsOwnAccount: true,
    securityNotice: true,
  }),
  account: (accountId: string): MailRequester => ({ key: `account:${accountId}`, isRecipientsOwnAccount: false }),
  ip: (ip: string): MailRequester => ({ key: `ip:${limitSubject(ip)}`, isRecipientsOwnAccount: false }),
  admin: (): MailRequester => ({ key: 'admin', isRecipientsOwnAccount: true }),
};

/** One sign-in attempt, counted before its password is checked; report how it ended. */
export interface SignInAttempt {
  succeeded(): Promise<void>;
  /** Locks the address or the IP when this failure reached its limit; returns the delay to add before answering. */
  failed(): Promise<{ delayMs: number }>;
}

/**
 * Counters shared through Postgres, so every instance sees the same attempts. Each limit is
 * keyed on something the attacker cannot pick freely: the normalised address asked for, the
 * client's address (its /64 for IPv6), the signed-in account.
 */
export class Throttle {
  private readonly failuresByAccount;
  private readonly failuresByIp;
  private readonly signInsByAccount;
  private readonly signInsByIp;
  private readonly secondStepFailuresByAccount;
  private readonly registrationsByIp;
  private readonly tokenFailuresByIp;
  private readonly userCodeFailuresByIp;
  private readonly pollsByDeviceCode;
  private readonly mailRequestsByAccount;
  private readonly resetsByIp;
  private readonly mailByRecipientAndRequester;
  private readonly mailByRecipient;
  private readonly securityNoticesByRecipient;

  constructor(
    private readonly db: Database,
    private readonly limits: RateLimits,
    devicePollIntervalSeconds = 5,
  ) {
    // A second of slack: a device polling at exactly the interval must not be told to slow down.
    this.pollsByDeviceCode = limiter(db, 'device-poll', 1, Math.max(1, devicePollIntervalSeconds - 1));
    this.failuresByAccount = limiter(db, 'login-account', limits.loginFailuresPerAccount, limits.loginFailureWindowSeconds);
    this.failuresByIp = limiter(db, 'login-ip', limits.loginFailuresPerIp, limits.loginFailureWindowSeconds);
    this.signInsByAccount = limiter(db, 'signin-account', limits.signInsPerAccountPerMinute, 60);
    this.signInsByIp = limiter(db, 'signin-ip', limits.signInsPerIpPerMinute, 60);
    this.secondStepFailuresByAccount = limiter(
      db,
      'second-step-account',
      limits.secondStepFailuresPerAccount,
      limits.loginFailureWindowSeconds,
    );
    this.registrationsByIp = limiter(db, 'register-ip', limits.registrationsPerIpPerHour, 3600);
    this.tokenFailuresByIp = limiter(db, 'token-ip', limits.tokenFailuresPerIpPerMinute, 60);
    this.userCodeFailuresByIp = limiter(db, 'user-code-ip', limits.userCodeFailuresPerIp, limits.loginFailureWindowSeconds);
    this.mailRequestsByAccount = limiter(db, 'mail-account', limits.mailPerAccountPerHour, 3600);
    this.resetsByIp = limiter(db, 'reset-ip', limits.passwordResetsPerIpPerHour, 3600);
    this.mailByRecipientAndRequester = limiter(db, 'mail-pair', limits.mailPerRecipientPerRequesterPerHour, 3600);
    this.mailByRecipient = limiter(db, 'mail-recipient', limits.mailPerRecipientPerHour, 3600);
    this.securityNoticesByRecipient = limiter(db, 'mail-security-notice', limits.mailSecurityNoticesPerHour, 3600);
  }

  /**
   * Counts a sign-in attempt before its password is checked, atomically (increment, then
   * compare), so a burst of concurrent guesses gets no more verifications than the limit.
   * Throws TooManyAttempts while the address or the IP is locked, or past the limits on
   * sign-ins of any outcome.
   */
  async beginSignIn(email: string, ip: string): Promise<SignInAttempt> {
    const accountKey = addressKey(email);
    const clientKey = ipKey(ip);
    // Attempts of any outcome first: past them, no failure is counted for a guess never checked.
    const [, [byAccount, byIp]] = await takeOrRefuse(
      this.db,
      [
        [this.signInsByAccount, accountKey],
        [this.signInsByIp, clientKey],
      ],
      [
        [this.failuresByAccount, accountKey],
        [this.failuresByIp, clientKey],
      ],
    );
    const { loginFailuresPerAccount, loginFailuresPerIp, loginLockSeconds } = this.limits;
    return {
      succeeded: async () => {
        // The person who knows the password starts afresh; the IP gets its attempt back.
        await forgetAndGiveBack(this.db, [this.failuresByAccount, accountKey], [this.failuresByIp, clientKey]);
      },
      failed: async () => {
        await Promise.all([
          byAccount!.consumedPoints >= loginFailuresPerAccount ? this.failuresByAccount.block(accountKey, loginLockSeconds) : undefined,
          byIp!.consumedPoints >= loginFailuresPerIp ? this.failuresByIp.block(clientKey, loginLockSeconds) : undefined,
        ]);
        const failures = byAccount!.consumedPoints;
        return { delayMs: failures <= 3 ? 0 : Math.min(250 * 2 ** (failures - 4), 4000) };
      },
    };
  }

  /**
   * Counts a second-step answer (a code, a passkey) before it is checked, per account and
   * per IP, like a password. Throws TooManyAttempts while either is locked. A right password
   * does not reset this counter, so knowing the password never buys more guesses of the
   * code; a right second step does.
   */
  async beginSecondStep(accountId: string, ip: string): Promise<SignInAttempt> {
    const accountKey = keyFor('account', accountId);
    const clientKey = ipKey(ip);
    const [[byAccount, byIp]] = await takeOrRefuse(this.db, [
      [this.secondStepFailuresByAccount, accountKey],
      [this.failuresByIp, clientKey],
    ]);
    const { secondStepFailuresPerAccount, loginFailuresPerIp, loginLockSeconds } = this.limits;
    return {
      succeeded: async () => {
        await forgetAndGiveBack(this.db, [this.secondStepFailuresByAccount, accountKey], [this.failuresByIp, clientKey]);
      },
      failed: async () => {
        await Promise.all([
          byAccount!.consumedPoints >= secondStepFailuresPerAccount
            ? this.secondStepFailuresByAccount.block(accountKey, loginLockSeconds)
            : undefined,
          byIp!.consumedPoints >= loginFailuresPerIp ? this.failuresByIp.block(clientKey, loginLockSeconds) : undefined,
        ]);
        return { delayMs: 0 };
      },
    };
  }

  async consumeRegistration(ip: string): Promise<void> {
    await takeAll([[this.registrationsByIp, ipKey(ip)]]);
  }

  /** Counts a verification or email-change request of a signed-in account; throws past the limit. */
  async consumeAccountMailRequest(accountId: string): Promise<void> {
    await takeAll([[this.mailRequestsByAccount, keyFor('account', accountId)]]);
  }

  /** Counts a password-reset request from an IP; throws past the limit (which says nothing about any account). */
  async consumePasswordResetRequest(ip: string): Promise<void> {
    await takeAll([[this.resetsByIp, ipKey(ip)]]);
  }

  /**
   * Whether a message of this kind may go to this address now, counting it: per recipient
   * and requester, and (unless the recipient's own account asks) per recipient whoever asks.
   * False means it is not sent; callers answer as if it had been, so no page says more.
   */
  async allowMail(kind: string, recipient: string, requester: MailRequester): Promise<boolean> {
    const recipientKey = emailKey(recipient);
    if (requester.securityNotice)
      return (await take(this.securityNoticesByRecipient, keyFor('mail', `${kind}\u0000${recipientKey}`))).allowed;
    const pair = await take(this.mailByRecipientAndRequester, keyFor('mail', `${kind}\u0000${recipientKey}\u0000${requester.key}`));
    if (!pair.allowed) return false;
    if (requester.isRecipientsOwnAccount) return true;
    return (await take(this.mailByRecipient, keyFor('mail', recipientKey))).allowed;
  }

  /** Throws TooManyAttempts while this IP is locked out of entering device-flow user codes. */
  async assertUserCodeGuessAllowed(ip: string): Promise<void> {
    const res = await this.userCodeFailuresByIp.get(ipKey(ip));
    if (res && res.consumedPoints >= this.limits.userCodeFailuresPerIp) throw new TooManyAttempts(secondsUntil(res));
  }

  /** Counts a user code that matched no device; the limit locks the IP for LOGIN_LOCK_SECONDS. */
  async recordUserCodeMiss(ip: string): Promise<void> {
    const { res } = await take(this.userCodeFailuresByIp, ipKey(ip));
    if (res.consumedPoints >= this.limits.userCodeFailuresPerIp)
      await this.userCodeFailuresByIp.block(ipKey(ip), this.limits.loginLockSeconds);
  }

  /** Counts a device's poll of the token endpoint; true when it polled again within the interval (answer slow_down). */
  async devicePollTooSoon(deviceCode: string): Promise<boolean> {
    return !(await take(this.pollsByDeviceCode, keyFor('device', deviceCode))).allowed;
  }

  async assertTokenRequestAllowed(ip: string): Promise<void> {
    const res = await this.tokenFailuresByIp.get(ipKey(ip));
    if (res && res.consumedPoints >= this.limits.tokenFailuresPerIpPerMinute) throw new TooManyAttempts(secondsUntil(res));
  }

  async recordTokenFailure(ip: string): Promise<void> {
    const { res } = await take(this.tokenFailuresByIp, ipKey(ip));
    if (res.consumedPoints >= this.limits.tokenFailuresPerIpPerMinute) await this.tokenFailuresByIp.block(ipKey(ip), 300);
  }
}

/** Deletes counters whose window has passed (run by the sweeper). */
export async function sweepExpiredRateLimits(db: Database): Promise<number> {
  const { rowCount } = await db.query('DELETE FROM rate_limits WHERE expire IS NOT NULL AND expire < $1', [Date.now()]);
  return rowCount ?? 0;
}
