import { randomUUID } from 'node:crypto';
import { holdLease } from '../db/leases.js';
import { sweepFinishedEvents } from '../events/deliveries.js';
import { sweepExpiredAccountSessions } from '../accounts/account-sessions.js';
import { sweepExpiredLinkTokens } from '../accounts/one-time-links.js';
import { pruneAuditEvents } from '../audit/log.js';
import { sweepOutbox } from '../mail/outbox.js';
import { sweepFinishedMail } from '../mail/deliveries.js';
import type { Database } from '../db/index.js';
import type { Logger } from '../logger.js';
import { sweepExpiredRateLimits } from '../security/throttle.js';
import { sweepSpentChallenges } from '../factors/challenges.js';
import { sweepPendingSignIns } from '../factors/pending-sign-ins.js';
import { sweepTotpEnrolments } from '../factors/totp.js';
import { sweepExpiredArtefacts, sweepOrphanSessionDevices } from './artefacts.js';

export interface SweepOptions {
  intervalSeconds: number;
  batchSize: number;
  auditRetentionDays: number;
}

/**
 * Periodically deletes expired protocol rows (in bounded batches), spent rate-limit
 * counters, audit events and finished event deliveries past retention, expired one-time links and account-page sessions,
 * week-old outbox mail, and the leftovers of sign-ins (unfinished second steps, answered
 * challenges, abandoned authenticator setups, devices of sessions that ended). Returns a stop function.
 */
export function startExpiredRowSweeper(db: Database, logger: Logger, options: SweepOptions): () => void {
  let running = false;
  // Once per database: the process holding the lease sweeps; another takes over when it lapses.
  const holder = randomUUID();
  const timer = setInterval(async () => {
    if (running) return;
    running = true;
    try {
      if (!(await holdLease(db, 'sweeper', holder, options.intervalSeconds * 3))) return;
      const protocolRows = await sweepExpiredArtefacts(db, options.batchSize);
      const counters = await sweepExpiredRateLimits(db);
      // Event delivery records are kept as long as the audit log: the person's export lists them.
      const auditEvents =
        (await pruneAuditEvents(db, options.auditRetentionDays)) + (await sweepFinishedEvents(db, options.auditRetentionDays));
      const selfService =
        (await sweepExpiredLinkTokens(db)) +
        (await sweepExpiredAccountSessions(db)) +
        (await sweepOutbox(db)) +
        (await sweepFinishedMail(db));
      const signIn =
        (await sweepPendingSignIns(db)) +
        (await sweepSpentChallenges(db)) +
        (await sweepTotpEnrolments(db)) +
        (await sweepOrphanSessionDevices(db));
      if (protocolRows + counters + auditEvents + selfService + signIn > 0) {
        logger.info({ protocolRows, counters, auditEvents, selfService, signIn }, 'expired rows swept');
      }
    } catch (error) {
      logger.warn({ err: (error as Error).message }, 'expired-row sweep failed; will retry');
    } finally {
      running = false;
    }
  }, options.intervalSeconds * 1000);
  timer.unref();
  return () => clearInterval(timer);
}
