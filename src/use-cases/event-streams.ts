import { z } from 'zod';
import { recordAuditEvent } from '../audit/log.js';
import type { Queryable } from '../db/index.js';
import { Conflict, InvalidInput, NotFound, TooManyAttempts } from '../errors.js';
import { enqueueEvent, newTxn } from '../events/deliveries.js';
import { eventUris, isEventUri, verificationEventUri, type EventUri } from '../events/event-types.js';
import {
  createStream,
  deleteStream,
  putStream,
  setStreamStatus,
  streamOfClient,
  updateStream,
  type EventStream,
  type StreamStatus,
} from '../events/streams.js';
import { isPrivateHost } from '../security/client-address.js';
import type { Actor, WorkflowDeps } from './deps.js';

/**
 * A service's event stream, managed by the service itself (SSF's management API) or by an
 * administrator (idp clients update --events-endpoint): the same checks either way.
 */

/** Where events may be pushed: https on a public host; loopback and private hosts only when ALLOW_PRIVATE_NETWORK_FETCH is on. */
export function endpointSchema(allowPrivateNetwork: boolean) {
  return z
    .string()
    .max(2000, 'use at most 2000 characters')
    .refine((value) => URL.canParse(value), 'must be an absolute URL')
    .transform((value) => new URL(value))
    .refine((url) => !url.username && !url.password && !url.hash, 'must not carry credentials or a fragment')
    .refine(
      (url) => url.protocol === 'https:' || (allowPrivateNetwork && url.protocol === 'http:'),
      'must use https (http only for development, with ALLOW_PRIVATE_NETWORK_FETCH=true)',
    )
    .refine((url) => allowPrivateNetwork || !isPrivateHost(url.hostname), 'must be on a public host')
    .transform((url) => url.href);
}

export const requestedEventsSchema = z
  .array(z.string().max(200))
  .max(20)
  .refine((uris) => uris.every(isEventUri), { message: `unknown event type; supported: ${eventUris.join(' ')}` })
  .transform((uris) => [...new Set(uris)] as EventUri[]);

export const descriptionSchema = z
  .string()
  .max(200)
  .refine((value) => !value.includes('\u0000'), 'must not contain NUL')
  .nullable();

function parse<T extends z.ZodType>(schema: T, value: unknown, what: string): z.output<T> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new InvalidInput(`${what}: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
  return parsed.data;
}

async function audit(db: Queryable, clientId: string, actor: Actor | 'service', action: string): Promise<void> {
  await recordAuditEvent(db, {
    event: 'client.updated',
    outcome: 'success',
    actor: actor === 'service' ? clientId : actor.kind === 'admin' ? 'admin' : null,
    clientId,
    details: { eventStream: action },
  });
}

export async function createEventStream(
  deps: WorkflowDeps,
  clientId: string,
  input: { endpointUrl: unknown; eventsRequested: unknown; description?: unknown },
): Promise<EventStream> {
  const settings = {
    endpointUrl: parse(endpointSchema(deps.config.allowPrivateNetworkFetch), input.endpointUrl, 'delivery.endpoint_url'),
    eventsRequested: parse(requestedEventsSchema, input.eventsRequested ?? [], 'events_requested'),
    description: parse(descriptionSchema.optional(), input.description, 'description') ?? null,
  };
  const stream = await createStream(deps.db, clientId, settings);
  if (!stream) throw new Conflict('this service has an event stream already (one per service)');
  await audit(deps.db, clientId, 'service', 'created');
  return stream;
}

/** Changes what was given (PATCH), or everything (PUT: what is not given goes back to its default). */
export async function changeEventStream(
  deps: WorkflowDeps,
  clientId: string,
  input: { endpointUrl?: unknown; eventsRequested?: unknown; description?: unknown },
  replace: boolean,
): Promise<EventStream> {
  const changes: Parameters<typeof updateStream>[2] = {};
  if (replace || input.endpointUrl !== undefined) {
    changes.endpointUrl = parse(endpointSchema(deps.config.allowPrivateNetworkFetch), input.endpointUrl, 'delivery.endpoint_url');
  }
  if (replace || input.eventsRequested !== undefined) {
    changes.eventsRequested = parse(requestedEventsSchema, input.eventsRequested ?? [], 'events_requested');
  }
  if (replace || input.description !== undefined)
    changes.description = parse(descriptionSchema.optional(), input.description, 'description') ?? null;
  const stream = await updateStream(deps.db, clientId, changes);
  if (!stream) throw new NotFound('no event stream');
  await audit(deps.db, clientId, 'service', replace ? 'replaced' : 'updated');
  return stream;
}

export async function removeEventStream(deps: WorkflowDeps, clientId: string, actor: Actor | 'service'): Promise<void> {
  if (!(await deleteStream(deps.db, clientId))) throw new NotFound('no event stream');
  await audit(deps.db, clientId, actor, 'deleted');
}

export async function changeEventStreamStatus(
  deps: WorkflowDeps,
  clientId: string,
  input: { status: unknown; reason?: unknown },
): Promise<EventStream> {
  const status = parse(z.enum(['enabled', 'paused', 'disabled']), input.status, 'status') as StreamStatus;
  const reason = parse(descriptionSchema.optional(), input.reason, 'reason') ?? null;
  const stream = await setStreamStatus(deps.db, clientId, status, reason);
  if (!stream) throw new NotFound('no event stream');
  await audit(deps.db, clientId, 'service', `status ${status}`);
  return stream;
}

/** Seconds a service waits between two verification requests (SSF min_verification_interval). */
export const MIN_VERIFICATION_INTERVAL = 15;

/** Queues a verification event (SSF §8.1.4) carrying the service's `state`, at most once per MIN_VERIFICATION_INTERVAL. */
export async function requestStreamVerification(deps: WorkflowDeps, clientId: string, input: { state?: unknown }): Promise<void> {
  const state = parse(z.string().max(500).optional(), input.state, 'state');
  const stream = await streamOfClient(deps.db, clientId);
  if (!stream) throw new NotFound('no event stream');
  await deps.db.transaction(async (tx) => {
    // One verification at a time per service: serialised on the stream row.
    await tx.query('SELECT 1 FROM event_streams WHERE client_id = $1 FOR UPDATE', [clientId]);
    const { rows } = await tx.query<{ recent: boolean }>(
      `SELECT EXISTS (SELECT 1 FROM event_deliveries WHERE client_id = $1 AND event_type = $2
         AND created_at > now() - make_interval(secs => $3)) AS recent`,
      [clientId, verificationEventUri, MIN_VERIFICATION_INTERVAL],
    );
    if (rows[0]!.recent) throw new TooManyAttempts(MIN_VERIFICATION_INTERVAL);
    await enqueueEvent(tx, {
      clientId,
      issuer: deps.config.issuer,
      accountId: null,
      eventType: verificationEventUri,
      subject: { format: 'opaque', id: stream.streamId },
      payload: state === undefined ? {} : { state },
      txn: newTxn(),
    });
  });
}

/** The administrator's way: --events-endpoint URL --event NAME … creates or replaces the stream; an empty endpoint removes it. */
export async function configureEventStream(
  deps: WorkflowDeps,
  clientId: string,
  input: { endpointUrl: string; eventsRequested: EventUri[] },
): Promise<EventStream | undefined> {
  if (input.endpointUrl === '') {
    if (await deleteStream(deps.db, clientId)) await audit(deps.db, clientId, { kind: 'admin' }, 'deleted');
    return undefined;
  }
  const stream = await putStream(deps.db, clientId, {
    endpointUrl: parse(endpointSchema(deps.config.allowPrivateNetworkFetch), input.endpointUrl, '--events-endpoint'),
    eventsRequested: parse(requestedEventsSchema, input.eventsRequested, '--event'),
  });
  await audit(deps.db, clientId, { kind: 'admin' }, 'configured');
  return stream;
}
