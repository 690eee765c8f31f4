import { createHash } from 'node:crypto';
import { RateLimiterPostgres, RateLimiterRes } from 'rate-limiter-flexible';
import type { RateLimits } from '../config.js';
import type { Database } from '../db/index.js';
import { TooManyAttempts } from '../errors.js';

// Keys are hashed so the counters table holds no email addresses.
const keyFor = (kind: string, value: string) => `${kind}:${createHash('sha256').update(value).digest('base64url')}`;

/**
 * The limiter's queries without statement names: the embedded Postgres serves every pool
 * connection from one session, where a name prepared by one connection ("rate_limits:rlflx-get")
 * collides with the same name from the next, and the request fails.
 */
function unnamedStatements(db: Database) {
  return { query: (query: { text: string; values?: unknown[] }) => db.pool.query({ text: query.text, values: query.values }) };
}

function limiter(db: Database, keyPrefix: string, points: number, durationSeconds: number) {
  return new RateLimiterPostgres({
    storeClient: unnamedStatements(db),
    storeType: 'pool',
    tableName: 'rate_limits',
    tableCreated: true,
    clearExpiredByTimeout: false,
    keyPrefix,
    points,
    duration: durationSeconds,
  });
}

/** Counts one attempt; when it reaches the limit the key is locked for lockSeconds. */
async function countAttempt(limiter: RateLimiterPostgres, key: string, limit: number, lockSeconds: number): Promise<RateLimiterRes> {
  let res: RateLimiterRes;
  try {
    res = await limiter.consume(key);
  } catch (rejection) {
    if (!(rejection instanceof RateLimiterRes)) throw rejection;
    res = rejection;
  }
  if (res.consumedPoints >= limit) await limiter.block(key, lockSeconds);
  return res;
}

function secondsUntil(res: RateLimiterRes): number {
  return Math.ceil(Math.max(res.msBeforeNext, 1000) / 1000);
}

/**
 * Counters shared through Postgres, so every instance sees the same attempts. Only failures
 * count against sign-in and token limits: a person who signs in correctly is never slowed.
 */
export class Throttle {
  private readonly failuresByAccount;
  private readonly failuresByIp;
  private readonly registrationsByIp;
  private readonly tokenFailuresByIp;
  private readonly mailByAccount;
  private readonly resetsByEmail;
  private readonly resetsByIp;

  constructor(
    db: Database,
    private readonly limits: RateLimits,
  ) {
    this.failuresByAccount = limiter(db, 'login-account', limits.loginFailuresPerAccount, limits.loginFailureWindowSeconds);
    this.failuresByIp = limiter(db, 'login-ip', limits.loginFailuresPerIp, limits.loginFailureWindowSeconds);
    this.registrationsByIp = limiter(db, 'register-ip', limits.registrationsPerIpPerHour, 3600);
    this.tokenFailuresByIp = limiter(db, 'token-ip', limits.tokenFailuresPerIpPerMinute, 60);
    this.mailByAccount = limiter(db, 'mail-account', limits.mailPerAccountPerHour, 3600);
    this.resetsByEmail = limiter(db, 'reset-email', limits.passwordResetsPerEmailPerHour, 3600);
    this.resetsByIp = limiter(db, 'reset-ip', limits.passwordResetsPerIpPerHour, 3600);
  }

  private static async assertOpen(limiter: RateLimiterPostgres, key: string, limit: number): Promise<void> {
    const res = await limiter.get(key);
    if (res && res.consumedPoints >= limit) throw new TooManyAttempts(secondsUntil(res));
  }

  /** Throws TooManyAttempts while this email or this IP is locked out. */
  async assertSignInAllowed(email: string, ip: string): Promise<void> {
    await Throttle.assertOpen(this.failuresByAccount, keyFor('email', email.trim().toLowerCase()), this.limits.loginFailuresPerAccount);
    await Throttle.assertOpen(this.failuresByIp, keyFor('ip', ip), this.limits.loginFailuresPerIp);
  }

  /**
   * Counts a failed sign-in against the email and the IP; returns the delay to add before
   * answering (progressive: nothing for the first three failures, then doubling to 4 s).
   */
  async recordSignInFailure(email: string, ip: string): Promise<{ delayMs: number }> {
    const { loginFailuresPerAccount, loginFailuresPerIp, loginLockSeconds } = this.limits;
    const results = await Promise.all([
      countAttempt(this.failuresByAccount, keyFor('email', email.trim().toLowerCase()), loginFailuresPerAccount, loginLockSeconds),
      countAttempt(this.failuresByIp, keyFor('ip', ip), loginFailuresPerIp, loginLockSeconds),
    ]);
    const failures = results[0].consumedPoints;
    return { delayMs: failures <= 3 ? 0 : Math.min(250 * 2 ** (failures - 4), 4000) };
  }

  async recordSignInSuccess(email: string): Promise<void> {
    await this.failuresByAccount.delete(keyFor('email', email.trim().toLowerCase()));
  }

  async consumeRegistration(ip: string): Promise<void> {
    try {
      await this.registrationsByIp.consume(keyFor('ip', ip));
    } catch (rejection) {
      if (rejection instanceof RateLimiterRes) throw new TooManyAttempts(secondsUntil(rejection));
      throw rejection;
    }
  }

  /** Counts a message one account asks us to send (verification again, email change); throws past the limit. */
  async consumeAccountMail(accountId: string): Promise<void> {
    await Throttle.consumeOrThrow(this.mailByAccount, keyFor('account', accountId));
  }

  /**
   * Counts a password-reset request. Past the per-IP limit it throws (that says nothing about
   * any account); past the per-address limit it answers false, and the caller shows the same
   * page as always without sending, so the limit reveals no account either.
   */
  async consumePasswordResetRequest(email: string, ip: string): Promise<boolean> {
    await Throttle.consumeOrThrow(this.resetsByIp, keyFor('ip', ip));
    try {
      await this.resetsByEmail.consume(keyFor('email', email.trim().toLowerCase()));
      return true;
    } catch (rejection) {
      if (rejection instanceof RateLimiterRes) return false;
      throw rejection;
    }
  }

  private static async consumeOrThrow(limiter: RateLimiterPostgres, key: string): Promise<void> {
    try {
      await limiter.consume(key);
    } catch (rejection) {
      if (rejection instanceof RateLimiterRes) throw new TooManyAttempts(secondsUntil(rejection));
      throw rejection;
    }
  }

  async assertTokenRequestAllowed(ip: string): Promise<void> {
    await Throttle.assertOpen(this.tokenFailuresByIp, keyFor('ip', ip), this.limits.tokenFailuresPerIpPerMinute);
  }

  async recordTokenFailure(ip: string): Promise<void> {
    await countAttempt(this.tokenFailuresByIp, keyFor('ip', ip), this.limits.tokenFailuresPerIpPerMinute, 300);
  }
}

/** Deletes counters whose window has passed (run by the sweeper). */
export async function sweepExpiredRateLimits(db: Database): Promise<number> {
  const { rowCount } = await db.query('DELETE FROM rate_limits WHERE expire IS NOT NULL AND expire < $1', [Date.now()]);
  return rowCount ?? 0;
}
