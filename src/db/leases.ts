import type { Queryable } from './index.js';

/**
 * Takes or renews the lease on a job for `seconds`: true when this holder has it now (it
 * was free, had lapsed, or was already ours). One statement, so two processes asking at
 * once cannot both win.
 */
export async function holdLease(db: Queryable, job: string, holder: string, seconds: number): Promise<boolean> {
  const { rows } = await db.query(
    `INSERT INTO job_leases (name, holder, expires_at) VALUES ($1, $2, now() + make_interval(secs => $3))
     ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
       WHERE job_leases.expires_at < now() OR job_leases.holder = EXCLUDED.holder
     RETURNING holder`,
    [job, holder, seconds],
  );
  return rows.length === 1;
}
