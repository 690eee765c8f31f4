import { bodyParser } from '@koa/bodyparser';
import Router from '@koa/router';
import type { Context, Next } from 'koa';
import { z } from 'zod';
import { Conflict, InvalidInput, NotFound, TooManyAttempts } from '../errors.js';
import { eventUris } from '../events/event-types.js';
import { streamOfClient, type EventStream } from '../events/streams.js';
import {
  changeEventStream,
  changeEventStreamStatus,
  createEventStream,
  MIN_VERIFICATION_INTERVAL,
  removeEventStream,
  requestStreamVerification,
} from '../use-cases/event-streams.js';
import { statusForError } from './errors.js';
import { routerOptions } from './routing.js';
import type { SelfServiceDeps } from './self-service.js';

/**
 * The OpenID Shared Signals Framework transmitter: its metadata at
 * /.well-known/ssf-configuration and the stream management API (SSF 1.0 §8.1), with which a
 * service manages its own stream with an access token it got by client_credentials. One
 * stream per service, push delivery (RFC 8935).
 */
export const eventStreamPaths = {
  configuration: '/ssf/streams',
  status: '/ssf/status',
  verification: '/ssf/verify',
} as const;

const PUSH = 'urn:ietf:rfc:8935';

const jsonBody = bodyParser({
  enableTypes: ['json'],
  jsonLimit: '16kb',
  encoding: 'utf-8',
  onError(error) {
    const status = (error as { status?: number }).status;
    throw status === 413 ? error : new InvalidInput('the body is not JSON');
  },
});

const streamBody = z
  .object({
    stream_id: z.string().max(100).optional(),
    delivery: z.object({ method: z.literal(PUSH, { message: `delivery.method must be ${PUSH}` }), endpoint_url: z.unknown() }).optional(),
    events_requested: z.unknown().optional(),
    description: z.unknown().optional(),
  })
  .passthrough();
const statusBody = z.object({ stream_id: z.string().max(100), status: z.unknown(), reason: z.unknown().optional() });
const verifyBody = z.object({ stream_id: z.string().max(100), state: z.unknown().optional() });

function readBody<T extends z.ZodType>(ctx: Context, schema: T): z.output<T> {
  const parsed = schema.safeParse(ctx.request.body);
  if (!parsed.success) throw new InvalidInput(parsed.error.issues[0]?.message ?? 'malformed request');
  return parsed.data;
}

/** The service an access token was issued to by client_credentials; 401 otherwise. */
function requireServiceToken(deps: SelfServiceDeps) {
  return async function authenticateService(ctx: Context, next: Next): Promise<void> {
    const match = /^Bearer ([\x21-\x7e]{1,2000})$/.exec(ctx.get('authorization'));
    const token = match ? await deps.provider.ClientCredentials.find(match[1]!) : undefined;
    const client = token?.clientId && !token.isSenderConstrained() ? await deps.provider.Client.find(token.clientId) : undefined;
    if (!token || !client) {
      ctx.status = 401;
      ctx.set('www-authenticate', 'Bearer error="invalid_token"');
      ctx.body = { error: 'invalid_token', error_description: 'an access token the service got by client_credentials is required' };
      return;
    }
    ctx.state['serviceId'] = client.clientId;
    ctx.set('cache-control', 'no-store');
    await next();
  };
}

const serviceOf = (ctx: Context) => ctx.state['serviceId'] as string;

/** The stream the request names, which must be the service's own (another's is as good as unknown). */
async function namedStream(ctx: Context, deps: SelfServiceDeps, streamId: unknown): Promise<EventStream> {
  const stream = await streamOfClient(deps.db, serviceOf(ctx));
  if (!stream || (streamId !== undefined && streamId !== stream.streamId)) throw new NotFound('no such stream');
  return stream;
}

/**
 * The API answers errors in JSON with what was wrong (its messages are ours, in English, for a
 * developer): 400 malformed, 401 no token, 404 no such stream, 409 a stream already, 413 too
 * large, 429 verification asked too often. Everything else goes to the error boundary.
 */
async function answerInJson(ctx: Context, next: Next): Promise<void> {
  try {
    await next();
  } catch (error) {
    const status = statusForError(error);
    if (status >= 500) throw error;
    const codes: Record<number, string> = { 404: 'not_found', 409: 'conflict', 413: 'request_too_large', 429: 'too_many_requests' };
    if (error instanceof TooManyAttempts) ctx.set('retry-after', String(error.retryAfterSeconds));
    ctx.status = status;
    ctx.body = {
      error: codes[status] ?? 'invalid_request',
      error_description:
        error instanceof InvalidInput || error instanceof NotFound || error instanceof Conflict ? error.message : 'bad request',
    };
  }
}

export function eventStreamRoutes(deps: SelfServiceDeps): Router {
  const issuer = deps.config.issuer;
  const router = new Router(routerOptions);
  router.use(answerInJson);
  const configurationOf = (stream: EventStream) => ({
    stream_id: stream.streamId,
    iss: issuer,
    aud: stream.clientId,
    events_supported: eventUris,
    events_requested: stream.eventsRequested,
    events_delivered: stream.eventsRequested.filter((uri) => (eventUris as string[]).includes(uri)),
    delivery: { method: PUSH, endpoint_url: stream.endpointUrl },
    description: stream.description ?? undefined,
    min_verification_interval: MIN_VERIFICATION_INTERVAL,
  });

  router.get('/.well-known/ssf-configuration', (ctx) => {
    ctx.set('cache-control', 'public, max-age=300');
    ctx.body = {
      spec_version: '1_0',
      issuer,
      jwks_uri: `${issuer}/jwks`,
      delivery_methods_supported: [PUSH],
      configuration_endpoint: `${issuer}${eventStreamPaths.configuration}`,
      status_endpoint: `${issuer}${eventStreamPaths.status}`,
      verification_endpoint: `${issuer}${eventStreamPaths.verification}`,
      authorization_schemes: [{ spec_urn: 'urn:ietf:rfc:6749' }],
      default_subjects: 'ALL',
    };
  });

  const authenticated = requireServiceToken(deps);
  const { configuration, status, verification } = eventStreamPaths;

  router.post(configuration, authenticated, jsonBody, async (ctx) => {
    const body = readBody(ctx, streamBody);
    if (!body.delivery) throw new InvalidInput('delivery is required');
    const stream = await createEventStream(deps, serviceOf(ctx), {
      endpointUrl: body.delivery.endpoint_url,
      eventsRequested: body.events_requested,
      description: body.description,
    });
    ctx.status = 201;
    ctx.body = configurationOf(stream);
  });

  router.get(configuration, authenticated, async (ctx) => {
    const streamId = typeof ctx.query['stream_id'] === 'string' ? ctx.query['stream_id'] : undefined;
    if (streamId !== undefined) {
      ctx.body = configurationOf(await namedStream(ctx, deps, streamId));
      return;
    }
    const stream = await streamOfClient(deps.db, serviceOf(ctx));
    ctx.body = stream ? [configurationOf(stream)] : [];
  });

  for (const [method, replace] of [
    ['patch', false],
    ['put', true],
  ] as const) {
    router[method](configuration, authenticated, jsonBody, async (ctx) => {
      const body = readBody(ctx, streamBody.extend({ stream_id: z.string().max(100) }));
      await namedStream(ctx, deps, body.stream_id);
      if (replace && !body.delivery) throw new InvalidInput('delivery is required');
      const stream = await changeEventStream(
        deps,
        serviceOf(ctx),
        { endpointUrl: body.delivery?.endpoint_url, eventsRequested: body.events_requested, description: body.description },
        replace,
      );
      ctx.body = configurationOf(stream);
    });
  }

  router.delete(configuration, authenticated, async (ctx) => {
    await namedStream(ctx, deps, ctx.query['stream_id']);
    await removeEventStream(deps, serviceOf(ctx), 'service');
    ctx.status = 204;
  });

  router.get(status, authenticated, async (ctx) => {
    const stream = await namedStream(ctx, deps, ctx.query['stream_id']);
    ctx.body = { stream_id: stream.streamId, status: stream.status, ...(stream.statusReason ? { reason: stream.statusReason } : {}) };
  });

  router.post(status, authenticated, jsonBody, async (ctx) => {
    const body = readBody(ctx, statusBody);
    await namedStream(ctx, deps, body.stream_id);
    const stream = await changeEventStreamStatus(deps, serviceOf(ctx), { status: body.status, reason: body.reason });
    ctx.body = { stream_id: stream.streamId, status: stream.status, ...(stream.statusReason ? { reason: stream.statusReason } : {}) };
  });

  router.post(verification, authenticated, jsonBody, async (ctx) => {
    const body = readBody(ctx, verifyBody);
    await namedStream(ctx, deps, body.stream_id);
    await requestStreamVerification(deps, serviceOf(ctx), { state: body.state });
    ctx.status = 204;
  });

  return router;
}
