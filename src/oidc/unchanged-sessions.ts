/** How far a session's expiry may lag behind its sliding window before it is written anyway. */
const EXPIRY_SLACK_SECONDS = 60;

/** JSON with object keys sorted: jsonb gives keys back in its own order. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, item]) => item !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([key, item]) => `${JSON.stringify(key)}:${canonical(item)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

function withoutExpiry(payload: Record<string, unknown>): { rest: string; exp: number | undefined } {
  const { exp, ...rest } = payload;
  return { rest: canonical(rest), exp: typeof exp === 'number' ? exp : undefined };
}

/**
 * oidc-provider saves the session at the end of every request that used it, only to slide its
 * expiry: most of those writes change nothing else. This remembers each session as it was last
 * read or written here and tells when a save would only move the expiry by less than a minute.
 * Skipping it is safe: the row keeps what it had, and a session ended meanwhile stays ended.
 */
export function unchangedSessions(maxEntries = 10_000) {
  const known = new Map<string, { rest: string; exp: number | undefined }>();
  const remember = (storedId: string, payload: Record<string, unknown>) => {
    if (known.size >= maxEntries) known.clear();
    known.set(storedId, withoutExpiry(payload));
  };
  return {
    read: remember,
    /** True when `payload` differs from the known row only by an expiry under a minute later. */
    wouldNotChange(storedId: string, payload: Record<string, unknown>): boolean {
      const before = known.get(storedId);
      if (!before) return false;
      const after = withoutExpiry(payload);
      return (
        before.rest === after.rest &&
        before.exp !== undefined &&
        after.exp !== undefined &&
        after.exp >= before.exp &&
        after.exp - before.exp < EXPIRY_SLACK_SECONDS
      );
    },
    written: remember,
    forget(storedId: string): void {
      known.delete(storedId);
    },
  };
}
