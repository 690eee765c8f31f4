import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { holdLease } from '../../src/db/leases.js';
import { testDatabase } from '../helpers/server.js';

/* Jobs that run once per database: one holder at a time, another after it lapses. */

const db = testDatabase();
afterAll(() => db.close());

describe('job leases', () => {
  it('go to one of many holders asking at once, stay with it while it renews, and pass on once they lapse', async () => {
    const job = `job-${randomBytes(4).toString('hex')}`;
    const holders = Array.from({ length: 8 }, () => randomUUID());
    const won = await Promise.all(holders.map((holder) => holdLease(db, job, holder, 60)));
    expect(won.filter(Boolean)).toHaveLength(1);
    const winner = holders[won.indexOf(true)]!;
    expect(await holdLease(db, job, winner, 60)).toBe(true);
    expect(
      await holdLease(
        db,
        job,
        holders.find((holder) => holder !== winner)!,
        60,
      ),
    ).toBe(false);

    await db.query(`UPDATE job_leases SET expires_at = now() - interval '1 second' WHERE name = $1`, [job]);
    const next = holders.find((holder) => holder !== winner)!;
    expect(await holdLease(db, job, next, 60)).toBe(true);
    expect(await holdLease(db, job, winner, 60)).toBe(false);
  });
});
