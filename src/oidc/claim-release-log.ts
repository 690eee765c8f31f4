import { recordClaimRelease, type ReleaseRoute } from '../accounts/claim-releases.js';
import { claimsByScope } from '../accounts/claims.js';
import type { Database } from '../db/index.js';
import type { Logger } from '../logger.js';

/** How long one process waits before writing the same release again: "last" is shown to the minute. */
const REWRITE_AFTER_MS = 60_000;

/**
 * The claims oidc-provider releases from what findAccount returns: those of the granted
 * scopes and of a claims request, less the ones the person declined; `sub` always.
 */
export function releasedClaimNames(
  available: Record<string, unknown>,
  granted: { scope: string; requested?: Record<string, unknown> | null; rejected?: readonly string[] },
): string[] {
  const allowed = new Set<string>(['sub', ...Object.keys(granted.requested ?? {})]);
  for (const scope of granted.scope.split(' ')) {
    for (const claim of claimsByScope[scope as keyof typeof claimsByScope] ?? []) allowed.add(claim);
  }
  for (const claim of granted.rejected ?? []) if (claim !== 'sub') allowed.delete(claim);
  return Object.keys(available).filter((claim) => allowed.has(claim) && available[claim] !== undefined);
}

/**
 * Keeps the record of which claims (names, never values) each service received, by route.
 * Written after the response, never in its way; a repeat of the same release is written at
 * most once a minute per process (a new claim or route is written at once).
 */
export function claimReleaseLog(db: Database, logger: Logger) {
  const recent = new Map<string, number>();
  return {
    note(release: { accountId: string; clientId: string; route: ReleaseRoute; claims: readonly string[] }): void {
      if (release.claims.length === 0) return;
      const key = [release.accountId, release.clientId, release.route, ...[...release.claims].sort()].join('\0');
      const now = Date.now();
      if ((recent.get(key) ?? 0) > now - REWRITE_AFTER_MS) return;
      if (recent.size > 10_000) recent.clear();
      recent.set(key, now);
      recordClaimRelease(db, release).catch((error: Error) => {
        recent.delete(key);
        logger.warn({ err: error.message }, 'could not record a claim release');
      });
    },
  };
}

export type ClaimReleaseLog = ReturnType<typeof claimReleaseLog>;
