import { pruneAuditEvents } from '../audit/log.js';
import type { Database } from '../db/index.js';
import type { Logger } from '../logger.js';
import { sweepExpiredRateLimits } from '../security/throttle.js';
import { sweepExpired } from './adapter.js';

export interface SweepOptions {
  intervalSeconds: number;
  batchSize: number;
  auditRetentionDays: number;
}

/**
 * Periodically deletes expired protocol rows (in bounded batches), spent rate-limit
 * counters and audit events past retention. Returns a stop function.
 */
export function startExpiredRowSweeper(db: Database, logger: Logger, options: SweepOptions): () => void {
  let running = false;
  const timer = setInterval(async () => {
    if (running) return;
    running = true;
    try {
      const protocolRows = await sweepExpired(db, options.batchSize);
      const counters = await sweepExpiredRateLimits(db);
      const auditEvents = await pruneAuditEvents(db, options.auditRetentionDays);
      if (protocolRows + counters + auditEvents > 0) logger.info({ protocolRows, counters, auditEvents }, 'expired rows swept');
    } catch (error) {
      logger.warn({ err: (error as Error).message }, 'expired-row sweep failed; will retry');
    } finally {
      running = false;
    }
  }, options.intervalSeconds * 1000);
  timer.unref();
  return () => clearInterval(timer);
}
