import { randomUUID } from 'node:crypto';
import type { Context, Next } from 'koa';
import type { Logger } from '../logger.js';
import { incomingContext, inSpan, SpanKind } from '../telemetry.js';
import { observeHttpRequest } from './metrics.js';

const acceptableRequestId = /^[\w.-]{1,64}$/;

/** The route template (e.g. /interaction/:uid), not the raw path, so ids and codes stay out of logs and metric labels. */
export function routeLabel(ctx: Context): string {
  const matched = (ctx as Context & { _matchedRoute?: string })._matchedRoute ?? ctx.state['route'];
  if (matched) return String(matched);
  const route = (ctx as Context & { oidc?: { route?: string } }).oidc?.route;
  return route ? `oidc:${route}` : 'unmatched';
}

/** Gives each request an id (honouring a sane incoming X-Request-Id) and logs it once when done. */
export function requestLogging(logger: Logger) {
  return async function logRequest(ctx: Context, next: Next): Promise<void> {
    const incoming = ctx.get('x-request-id');
    const requestId = acceptableRequestId.test(incoming) ? incoming : randomUUID();
    const log = logger.child({ requestId });
    ctx.state['log'] = log;
    ctx.state['requestId'] = requestId;
    ctx.set('x-request-id', requestId);
    const started = process.hrtime.bigint();
    try {
      await next();
    } finally {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const route = routeLabel(ctx);
      observeHttpRequest(ctx.method, route, ctx.status, seconds);
      log.info(
        { method: ctx.method, path: ctx.path, route, status: ctx.status, durationMs: Math.round(seconds * 1000 * 10) / 10 },
        'request',
      );
    }
  };
}

/**
 * A server span per request, continuing the caller's W3C trace context; named after the
 * route template once it is known (never the raw path, which can hold ids and codes).
 */
export function requestTracing() {
  return async function traceRequest(ctx: Context, next: Next): Promise<void> {
    await inSpan(
      `HTTP ${ctx.method}`,
      { kind: SpanKind.SERVER, parent: incomingContext(ctx.headers), attributes: { 'http.request.method': ctx.method } },
      async (span) => {
        try {
          await next();
        } finally {
          const route = routeLabel(ctx);
          span.updateName(`${ctx.method} ${route}`);
          span.setAttributes({ 'http.route': route, 'http.response.status_code': ctx.status });
        }
      },
    );
  };
}
