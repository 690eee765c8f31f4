import { inSpan, SpanKind } from '../telemetry.js';
import type { Logger } from '../logger.js';

export interface DeliveryWorker {
  /** Delivers what is due now (also runs on a timer and whenever something is queued). */
  runOnce(): Promise<number>;
  stop(): Promise<void>;
}

/** A worker with nothing to do (a queue that is not configured). */
export const idleWorker: DeliveryWorker = { runOnce: async () => 0, stop: async () => undefined };

/** 1 s, 2 s, 4 s … capped at one minute between attempts. */
export const retryDelaySeconds = (attempts: number) => Math.min(2 ** Math.max(attempts - 1, 0), 60);

/**
 * The worker loop of a durable outbound queue (back-channel logout tokens, security event
 * tokens): claims due items in batches and delivers them, on a timer and as soon as
 * something is queued in this process; one run at a time; stop waits for the run in flight.
 */
export function startDeliveryLoop<T>(options: {
  what: string;
  claim(limit: number): Promise<T[]>;
  deliver(item: T): Promise<void>;
  batchSize: number;
  pollSeconds: number;
  onQueued(listener: () => void): () => void;
  logger: Logger;
}): DeliveryWorker {
  let running: Promise<number> | undefined;
  let stopped = false;
  async function runOnce(): Promise<number> {
    if (running) return running;
    running = (async () => {
      let delivered = 0;
      for (;;) {
        const due = await options.claim(options.batchSize);
        if (due.length === 0 || stopped) return delivered;
        await Promise.all(due.map((item) => inSpan(`deliver ${options.what}`, { kind: SpanKind.PRODUCER }, () => options.deliver(item))));
        delivered += due.length;
      }
    })().finally(() => {
      running = undefined;
    });
    return running;
  }

  const runQuietly = () => {
    if (stopped) return;
    runOnce().catch((error: Error) => options.logger.warn({ err: error.message }, `${options.what} delivery run failed; will retry`));
  };
  const timer = setInterval(runQuietly, options.pollSeconds * 1000);
  timer.unref();
  const unsubscribe = options.onQueued(() => setImmediate(runQuietly));

  return {
    runOnce,
    async stop() {
      stopped = true;
      clearInterval(timer);
      unsubscribe();
      await running?.catch(() => undefined);
    },
  };
}
