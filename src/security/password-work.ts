import PQueue from 'p-queue';
import { inSpan } from '../telemetry.js';
import { Overloaded } from '../errors.js';

export interface PasswordWorkLimits {
  /** argon2 computations running at once: the size of libuv's thread pool, where they run. */
  concurrency: number;
  /** How many may wait beyond those; past it a request is refused at once. */
  queueMax: number;
  /** How long one may wait for its turn before it is refused. */
  queueTimeoutMs: number;
}

const defaults: PasswordWorkLimits = { concurrency: 4, queueMax: 100, queueTimeoutMs: 5000 };

let limits = defaults;
let queue = new PQueue({ concurrency: defaults.concurrency });

/**
 * Every argon2 hash and verification of this process runs through one bounded queue. The
 * thread pool is shared by the whole process, so the bound is too: a burst of sign-ins (one
 * account's, or many) waits its turn in order instead of piling up in the pool, and past the
 * queue's bound or wait the request gets 503 with Retry-After instead of slowing everyone.
 * Set once at start from the configuration.
 */
export function configurePasswordWork(next: PasswordWorkLimits): void {
  limits = next;
  queue = new PQueue({ concurrency: next.concurrency });
}

/** How many computations run and wait now (metrics, tests). */
export function passwordWorkLoad(): { running: number; waiting: number } {
  return { running: queue.pending, waiting: queue.size };
}

const retryAfterSeconds = () => Math.max(1, Math.ceil(limits.queueTimeoutMs / 1000));

/** Runs one argon2 computation when its turn comes; throws Overloaded when the queue is full or the wait too long. */
export async function runPasswordWork<T>(work: () => Promise<T>): Promise<T> {
  if (queue.pending >= limits.concurrency && queue.size >= limits.queueMax) {
    throw new Overloaded('too many sign-ins are being checked right now', retryAfterSeconds());
  }
  const waiting = new AbortController();
  const timer = setTimeout(() => waiting.abort(), limits.queueTimeoutMs);
  try {
    return await queue.add(
      () => {
        // Once started it runs to the end: the timeout bounds only the wait.
        clearTimeout(timer);
        return inSpan('argon2', {}, () => work());
      },
      { signal: waiting.signal },
    );
  } catch (error) {
    if (waiting.signal.aborted) throw new Overloaded('a sign-in waited too long to be checked', retryAfterSeconds());
    throw error;
  } finally {
    clearTimeout(timer);
  }
}
