import { SignJWT } from 'jose';
import type Provider from 'oidc-provider';
import type { Database } from '../db/index.js';
import { claimDueEvents, markEventAttemptFailed, markEventDelivered, onEventQueued, type EventDelivery } from '../events/deliveries.js';
import { streamOfClient } from '../events/streams.js';
import type { Logger } from '../logger.js';
import { isPrivateHost } from '../security/client-address.js';
import { retryDelaySeconds, startDeliveryLoop, type DeliveryWorker } from '../db/delivery-loop.js';
import { context, propagation, trace } from '@opentelemetry/api';
import { inSpan, SpanKind } from '../telemetry.js';
import { signingKeyOf } from './internals.js';

export interface EventDeliveryOptions {
  pollSeconds: number;
  maxAgeSeconds: number;
  batchSize: number;
  /** Development and tests: receivers on loopback and private addresses. */
  allowPrivateNetworkFetch: boolean;
}

/** A SET (RFC 8417) for one queued event, signed with the key that signs the service's ID tokens. */
export async function signEventToken(provider: Provider, event: EventDelivery): Promise<string> {
  const client = await provider.Client.find(event.clientId);
  const alg = client?.idTokenSignedResponseAlg === 'ES256' ? 'ES256' : 'RS256';
  const { kid, key } = signingKeyOf(provider, alg);
  return new SignJWT({ txn: event.txn, sub_id: event.subject, events: { [event.eventType]: event.payload } })
    .setProtectedHeader({ alg, kid, typ: 'secevent+jwt' })
    .setIssuer(event.issuer)
    .setAudience(event.clientId)
    .setJti(event.jti)
    .setIssuedAt(Math.floor(event.createdAt.getTime() / 1000))
    .sign(key);
}

/**
 * Pushes queued Security Event Tokens to each service's stream endpoint (RFC 8935): POST
 * application/secevent+jwt, accepted on 202. Anything else is retried with backoff until
 * maxAgeSeconds, then recorded as failed; the person's page never waits for it.
 */
export function startEventDelivery(provider: Provider, db: Database, logger: Logger, options: EventDeliveryOptions): DeliveryWorker {
  async function push(event: EventDelivery): Promise<void> {
    const stream = await streamOfClient(db, event.clientId);
    if (!stream) throw new Error('the service has no event stream any more');
    if (stream.status !== 'enabled') throw new Error(`the stream is ${stream.status}`);
    const endpoint = new URL(stream.endpointUrl);
    if (!options.allowPrivateNetworkFetch && (endpoint.protocol !== 'https:' || isPrivateHost(endpoint.hostname))) {
      throw new Error('the stream endpoint is not a public https URL');
    }
    const body = await signEventToken(provider, event);
    const response = await inSpan('POST', { kind: SpanKind.CLIENT, attributes: { 'server.address': endpoint.hostname } }, (span) => {
      // The receiver may continue the trace (W3C traceparent).
      const headers: Record<string, string> = { 'content-type': 'application/secevent+jwt', accept: 'application/json' };
      propagation.inject(trace.setSpan(context.active(), span), headers);
      return fetch(endpoint, { method: 'POST', headers, body, redirect: 'manual', signal: AbortSignal.timeout(5000) }).then((answer) => {
        span.setAttribute('http.response.status_code', answer.status);
        return answer;
      });
    });
    await response.body?.cancel();
    if (response.status !== 202) throw new Error(`the receiver answered HTTP ${response.status}`);
  }

  async function deliver(event: EventDelivery): Promise<void> {
    try {
      await push(event);
      await markEventDelivered(db, event.id);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      const status = await markEventAttemptFailed(db, event.id, message, retryDelaySeconds(event.attempts), options.maxAgeSeconds);
      logger.warn(
        { clientId: event.clientId, event: event.eventType, attempts: event.attempts, status, err: message },
        'event delivery attempt failed',
      );
    }
  }

  return startDeliveryLoop({
    what: 'security event',
    claim: (limit) => claimDueEvents(db, limit, 30),
    deliver,
    batchSize: options.batchSize,
    pollSeconds: options.pollSeconds,
    onQueued: onEventQueued,
    logger,
  });
}
