import type { RateLimiterPostgres } from 'rate-limiter-flexible';
import type { Queryable } from '../db/index.js';

/**
 * Several counters of the rate_limits table moved in one statement, by rate-limiter-flexible's
 * own rules (its upsert: a counter past its window starts again from this move, a counter in
 * its window adds to it and keeps its expiry; `expire` in epoch milliseconds). The library
 * moves one counter per statement; a sign-in moves four and then two, and each statement
 * costs more than its row.
 */

/** One counter: a limiter of the table, and the key it counts for. */
export type Counter = readonly [limiter: RateLimiterPostgres, key: string];

/** What a counter holds after a take: its count in the window, and when the window ends. */
export interface Taken {
  consumedPoints: number;
  msBeforeNext: number;
  /** Within the limiter's points. */
  allowed: boolean;
}

/** Where a window that starts at `now` ends, as the library writes it (null: a limiter without a window). */
const windowEnd = (limiter: RateLimiterPostgres, now: number) => (limiter.duration > 0 ? now + limiter.duration * 1000 : null);

const upsertRules = (now: string) => `
  ON CONFLICT (key) DO UPDATE SET
    points = CASE WHEN rate_limits.expire <= ${now} THEN excluded.points ELSE rate_limits.points + excluded.points END,
    expire = CASE WHEN rate_limits.expire <= ${now} THEN excluded.expire ELSE rate_limits.expire END`;

/**
 * Takes one point from each counter of `first` and, only when every one of them was within
 * its limit, from each counter of `then` (a guess refused for the first never counts for the
 * second): atomic per counter, as the library's consume is, so of concurrent takes exactly
 * the limit gets through. The counters of one call are distinct rows.
 */
export async function takeInTurn(db: Queryable, first: readonly Counter[], then: readonly Counter[] = []): Promise<[Taken[], Taken[]]> {
  const now = Date.now();
  const keysOf = (counters: readonly Counter[]) => counters.map(([limiter, key]) => limiter.getKey(key));
  const expiriesOf = (counters: readonly Counter[]) => counters.map(([limiter]) => windowEnd(limiter, now));
  const { rows } = await db.query<{ key: string; points: number; expire: string | null }>(
    `WITH first AS (
       INSERT INTO rate_limits (key, points, expire)
       SELECT key, 1, expire FROM unnest($1::text[], $2::bigint[]) AS c(key, expire)
       ${upsertRules('$3')}
       RETURNING key, points, expire
     ), within AS (
       SELECT NOT EXISTS (
         SELECT 1 FROM first JOIN unnest($1::text[], $4::int[]) AS l(key, max) USING (key) WHERE first.points > l.max
       ) AS ok
     ), then_ AS (
       INSERT INTO rate_limits (key, points, expire)
       SELECT key, 1, expire FROM unnest($5::text[], $6::bigint[]) AS c(key, expire), within WHERE within.ok
       ${upsertRules('$3')}
       RETURNING key, points, expire
     )
     SELECT key, points, expire::text FROM first UNION ALL SELECT key, points, expire::text FROM then_`,
    [keysOf(first), expiriesOf(first), now, first.map(([limiter]) => limiter.points), keysOf(then), expiriesOf(then)],
  );
  const byKey = new Map(rows.map((row) => [row.key, row]));
  const takenOf = (counters: readonly Counter[]) =>
    counters.flatMap(([limiter, key]) => {
      const row = byKey.get(limiter.getKey(key));
      if (!row) return [];
      const expire = row.expire === null ? null : Number(row.expire);
      return [
        {
          consumedPoints: row.points,
          msBeforeNext: expire === null ? -1 : Math.max(expire - Date.now(), 0),
          allowed: row.points <= limiter.points,
        },
      ];
    });
  return [takenOf(first), takenOf(then)];
}

/**
 * After a right answer, in one statement: `forget` starts afresh (deleted, as the library's
 * delete) and `giveBack` gets one point back (the library's reward).
 */
export async function forgetAndGiveBack(db: Queryable, [forgotten, forgottenKey]: Counter, [limiter, key]: Counter): Promise<void> {
  const now = Date.now();
  await db.query(
    `WITH forgotten AS (DELETE FROM rate_limits WHERE key = $1)
     INSERT INTO rate_limits (key, points, expire) VALUES ($2, -1, $4::bigint)
     ${upsertRules('$3')}`,
    [forgotten.getKey(forgottenKey), limiter.getKey(key), now, windowEnd(limiter, now)],
  );
}
