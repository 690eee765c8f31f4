import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * A token request's writes of the tokens it issues, awaited together before its answer
 * rather than each before the next step. oidc-provider saves the access token, then the
 * refresh token (or the reverse), each waiting for its commit; queued without waiting, both
 * go to Postgres in one multi-row statement (same-turn-batch.ts), and the answer still waits
 * for both commits: a token is never handed out unless it is stored.
 */
const scope = new AsyncLocalStorage<Promise<void>[]>();

/**
 * Runs `work` (one request) so that writes handed to `awaitBeforeAnswer` inside it are
 * awaited when it ends; a write that failed fails the request.
 */
export async function awaitingIssuedWrites<T>(work: () => Promise<T>): Promise<T> {
  const writes: Promise<void>[] = [];
  let result: T;
  try {
    result = await scope.run(writes, work);
  } catch (error) {
    await Promise.allSettled(writes);
    throw error;
  }
  // Every write settled (one may be handed over while others are awaited), then the first failure, if any.
  const outcomes: PromiseSettledResult<void>[] = [];
  while (outcomes.length < writes.length) outcomes.push(...(await Promise.allSettled(writes.slice(outcomes.length))));
  const failed = outcomes.find((outcome): outcome is PromiseRejectedResult => outcome.status === 'rejected');
  if (failed) throw failed.reason;
  return result;
}

/** Whether `write` will be awaited by the request it belongs to (false: not inside one; await it yourself). */
export function awaitBeforeAnswer(write: Promise<void>): boolean {
  const writes = scope.getStore();
  if (!writes) return false;
  // Marked handled now: its failure is reported by awaitingIssuedWrites, not as an unhandled rejection.
  write.catch(() => undefined);
  writes.push(write);
  return true;
}
