import type { Database } from '../db/index.js';
import type { Logger } from '../logger.js';
import { sweepExpiredRateLimits } from '../security/throttle.js';
import { sweepExpired } from './adapter.js';

/** Periodically deletes expired protocol rows in bounded batches. Returns a stop function. */
export function startExpiredRowSweeper(db: Database, logger: Logger, options: { intervalSeconds: number; batchSize: number }): () => void {
  let running = false;
  const timer = setInterval(async () => {
    if (running) return;
    running = true;
    try {
      const removed = (await sweepExpired(db, options.batchSize)) + (await sweepExpiredRateLimits(db));
      if (removed > 0) logger.info({ removed }, 'expired protocol rows and rate-limit counters swept');
    } catch (error) {
      logger.warn({ err: (error as Error).message }, 'expired-row sweep failed; will retry');
    } finally {
      running = false;
    }
  }, options.intervalSeconds * 1000);
  timer.unref();
  return () => clearInterval(timer);
}
