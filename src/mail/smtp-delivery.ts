import nodemailer from 'nodemailer';
import type { Config } from '../config.js';
import type { Database } from '../db/index.js';
import type { Logger } from '../logger.js';
import { retryDelaySeconds, startDeliveryLoop, type DeliveryWorker } from '../db/delivery-loop.js';
import type { KeyRing } from '../security/key-encryption.js';
import { claimDueMail, markMailAttemptFailed, markMailSent, onMailQueued, type QueuedMail } from './deliveries.js';

/** An SMTP reply of 5xx is final (no such mailbox, refused); anything else may pass later. */
function isPermanent(error: unknown): boolean {
  const code = (error as { responseCode?: unknown }).responseCode;
  return typeof code === 'number' && code >= 500 && code < 600;
}

/**
 * Sends queued mail over SMTP: one message at a time per claim, each claimed by one worker
 * of one instance (FOR UPDATE SKIP LOCKED with a lease), so it is sent once. A temporary
 * failure (the server down, a 4xx reply) is retried with backoff until
 * MAIL_DELIVERY_MAX_AGE_SECONDS; a 5xx reply fails it at once. Outcomes: idp mail deliveries.
 */
export function startMailDelivery(config: Config, db: Database, keys: () => Promise<KeyRing>, logger: Logger): DeliveryWorker {
  const transport = nodemailer.createTransport(config.mail.smtpUrl);
  async function deliver(mail: QueuedMail): Promise<void> {
    try {
      const info = await transport.sendMail({ from: config.mail.from, to: mail.to, subject: mail.subject, text: mail.text });
      await markMailSent(db, mail.id);
      logger.info({ purpose: mail.purpose, messageId: info.messageId, attempts: mail.attempts }, 'mail sent');
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      const status = await markMailAttemptFailed(db, mail.id, {
        error: message,
        permanent: isPermanent(error),
        retryInSeconds: retryDelaySeconds(mail.attempts),
        maxAgeSeconds: config.mail.maxAgeSeconds,
      });
      logger.warn({ purpose: mail.purpose, attempts: mail.attempts, status, err: message }, 'mail could not be sent');
    }
  }
  const worker = startDeliveryLoop({
    what: 'mail',
    claim: async (limit) => claimDueMail(db, await keys(), limit, 60),
    deliver,
    batchSize: 10,
    pollSeconds: config.mail.pollSeconds,
    onQueued: onMailQueued,
    logger,
  });
  return {
    runOnce: () => worker.runOnce(),
    async stop() {
      await worker.stop();
      transport.close();
    },
  };
}
