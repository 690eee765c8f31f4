import { randomBytes } from 'node:crypto';
import { RateLimiterPostgres } from 'rate-limiter-flexible';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { createPostgresDatabase, type Database } from '../../src/db/index.js';
import { createLogger } from '../../src/logger.js';
import { forgetAndGiveBack, takeInTurn } from '../../src/security/counters.js';

/*
 * Performance issue: the sign-in's counters move in one statement per turn instead of one per
 * counter, by the rules of rate-limiter-flexible, whose other statements share the table.
 */

let db: Database;
beforeAll(() => {
  db = createPostgresDatabase(inject('databaseUrl'), { poolMax: 10, logger: createLogger({ logLevel: 'silent' }) });
});
afterAll(async () => {
  await db?.close();
});

const limiter = (points: number, duration = 60) =>
  new RateLimiterPostgres({
    storeClient: { query: (query: { text: string; values?: unknown[] }) => db.query(query.text, query.values ?? []) },
    storeType: 'pool',
    tableName: 'rate_limits',
    tableCreated: true,
    clearExpiredByTimeout: false,
    keyPrefix: `test-${randomBytes(4).toString('hex')}`,
    points,
    duration,
  });
const key = () => randomBytes(6).toString('hex');
const row = async (rlKey: string) =>
  (await db.query<{ points: number; expire: string }>('SELECT points, expire FROM rate_limits WHERE key = $1', [rlKey])).rows[0];

describe('counters moved together', () => {
  it('count as the library counts: the same points, the same window, refused past the limit', async () => {
    const byLibrary = limiter(3);
    const together = limiter(3);
    const [a, b] = [key(), key()];
    const outcomes: { library: boolean; together: boolean }[] = [];
    for (let i = 0; i < 5; i += 1) {
      const library = await byLibrary.consume(a).then(
        () => true,
        () => false,
      );
      const [[taken]] = await takeInTurn(db, [[together, b]]);
      outcomes.push({ library, together: taken!.allowed });
      expect(taken!.consumedPoints).toBe(i + 1);
      expect(taken!.msBeforeNext).toBeGreaterThan(58_000);
    }
    expect(outcomes.map((outcome) => outcome.library)).toEqual([true, true, true, false, false]);
    expect(outcomes.map((outcome) => outcome.together)).toEqual([true, true, true, false, false]);
    const [mine, theirs] = [await row(together.getKey(b)), await row(byLibrary.getKey(a))];
    expect(mine!.points).toBe(theirs!.points);
    expect(Math.abs(Number(mine!.expire) - Number(theirs!.expire))).toBeLessThan(1000);
    // The library reads and blocks the counter it moved.
    expect((await together.get(b))?.consumedPoints).toBe(5);
  });

  it('start a counter afresh once its window has passed', async () => {
    const counter = limiter(2);
    const k = key();
    await takeInTurn(db, [[counter, k]]);
    await takeInTurn(db, [[counter, k]]);
    await db.query('UPDATE rate_limits SET expire = $2 WHERE key = $1', [counter.getKey(k), Date.now() - 1]);
    const [[taken]] = await takeInTurn(db, [[counter, k]]);
    expect(taken).toMatchObject({ consumedPoints: 1, allowed: true });
    expect(Number((await row(counter.getKey(k)))!.expire)).toBeGreaterThan(Date.now() + 58_000);
  });

  it('take nothing in the second turn when the first refuses, and exactly the limit of a burst', async () => {
    const attempts = limiter(4);
    const failures = limiter(100);
    const [who, ip] = [key(), key()];
    const burst = await Promise.all(Array.from({ length: 12 }, () => takeInTurn(db, [[attempts, who]], [[failures, ip]])));
    const allowed = burst.filter(([[first]]) => first!.allowed);
    expect(allowed).toHaveLength(4);
    expect(burst.filter(([, then]) => then.length === 1)).toHaveLength(4);
    expect((await row(attempts.getKey(who)))!.points).toBe(12);
    expect((await row(failures.getKey(ip)))!.points).toBe(4);
  });

  it('forget one counter and give one point back to another, as the library does', async () => {
    const forgotten = limiter(5);
    const rewarded = limiter(5);
    const byLibrary = limiter(5);
    const [f, r, l] = [key(), key(), key()];
    await takeInTurn(db, [
      [forgotten, f],
      [rewarded, r],
    ]);
    await takeInTurn(db, [[rewarded, r]]);
    await byLibrary.consume(l, 2);
    await forgetAndGiveBack(db, [forgotten, f], [rewarded, r]);
    await byLibrary.reward(l, 1);
    expect(await row(forgotten.getKey(f))).toBeUndefined();
    expect((await row(rewarded.getKey(r)))!.points).toBe(1);
    expect((await row(byLibrary.getKey(l)))!.points).toBe(1);
    // A point given back to a counter not yet there is a credit, as the library's reward makes it.
    const fresh = key();
    await forgetAndGiveBack(db, [forgotten, key()], [rewarded, fresh]);
    await byLibrary.reward(fresh, 1);
    expect((await row(rewarded.getKey(fresh)))!.points).toBe(-1);
    expect((await row(byLibrary.getKey(fresh)))!.points).toBe(-1);
  });
});
