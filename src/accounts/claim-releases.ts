import type { Queryable } from '../db/index.js';

/** How a claim reached a service: in an ID token, from the userinfo endpoint, or from introspection. */
export type ReleaseRoute = 'id_token' | 'userinfo' | 'introspection';

export interface ClaimRelease {
  clientId: string;
  claim: string;
  route: ReleaseRoute;
  firstAt: Date;
  lastAt: Date;
}

/** Notes that these claims (names, never values) went to the service by this route now. */
export async function recordClaimRelease(
  db: Queryable,
  release: { accountId: string; clientId: string; claims: readonly string[]; route: ReleaseRoute },
): Promise<void> {
  if (release.claims.length === 0) return;
  await db.query(
    `INSERT INTO claim_releases (account_id, client_id, claim, route)
     SELECT $1, $2, claim, $4 FROM unnest($3::text[]) AS claim
     WHERE EXISTS (SELECT 1 FROM accounts WHERE id = $1) AND EXISTS (SELECT 1 FROM clients WHERE id = $2)
     ON CONFLICT (account_id, client_id, claim, route) DO UPDATE SET last_at = now()`,
    [release.accountId, release.clientId, [...new Set(release.claims)], release.route],
  );
}

export async function listClaimReleases(db: Queryable, accountId: string): Promise<ClaimRelease[]> {
  const { rows } = await db.query<{ client_id: string; claim: string; route: ReleaseRoute; first_at: Date; last_at: Date }>(
    `SELECT client_id, claim, route, first_at, last_at FROM claim_releases WHERE account_id = $1 ORDER BY client_id, claim, route`,
    [accountId],
  );
  return rows.map((row) => ({ clientId: row.client_id, claim: row.claim, route: row.route, firstAt: row.first_at, lastAt: row.last_at }));
}
