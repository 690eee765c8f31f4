import { createServer, type Server } from 'node:http';
import { timingSafeEqual } from 'node:crypto';
import Router from '@koa/router';
import type { Context } from 'koa';
import type { Config } from '../config.js';
import type { Database } from '../db/index.js';
import type { Logger } from '../logger.js';
import { registry } from './metrics.js';
import { routerOptions } from './routing.js';

/** Liveness and readiness, answered for any Host (probes address the pod, not the issuer). */
export function healthRoutes(db: Database): Router {
  const router = new Router(routerOptions);
  router.get('/healthz', (ctx) => {
    ctx.set('cache-control', 'no-store');
    ctx.body = { status: 'ok' };
  });
  router.get('/readyz', async (ctx) => {
    const ready = await db.isReachable();
    ctx.set('cache-control', 'no-store');
    ctx.status = ready ? 200 : 503;
    ctx.body = { status: ready ? 'ready' : 'unavailable', database: ready ? 'reachable' : 'unreachable' };
  });
  return router;
}

function bearerMatches(header: string, token: string): boolean {
  const presented = Buffer.from(/^Bearer (.+)$/i.exec(header)?.[1] ?? '');
  const expected = Buffer.from(token);
  return presented.length === expected.length && timingSafeEqual(presented, expected);
}

/**
 * /metrics on the public listener, only when METRICS_TOKEN is set and presented as a bearer
 * token: metrics describe every sign-in, and are nobody's business but the operator's.
 */
export function publicMetricsRoute(config: Config): Router {
  const router = new Router(routerOptions);
  const token = config.metrics.token;
  if (!token) return router;
  router.get('/metrics', async (ctx: Context) => {
    ctx.set('cache-control', 'no-store');
    if (!bearerMatches(ctx.get('authorization'), token)) {
      ctx.status = 401;
      ctx.set('www-authenticate', 'Bearer realm="metrics"');
      ctx.body = { error: 'invalid_token', error_description: 'metrics need the bearer token set in METRICS_TOKEN' };
      return;
    }
    ctx.type = registry.contentType;
    ctx.body = await registry.metrics();
  });
  return router;
}

/**
 * The metrics listener of its own (METRICS_PORT, on METRICS_HOST: loopback unless set), for
 * a scraper beside the process. Serves GET /metrics and nothing else: this process's registry,
 * or, in the primary of a cluster (WEB_CONCURRENCY > 1), an aggregator that asks every worker
 * for theirs. A worker too busy to answer in time makes one scrape fail with 503 (the scraper
 * tries again at its next interval), not the process.
 */
export async function startMetricsServer(
  config: Config,
  logger: Logger,
  collect: () => Promise<string> = () => registry.metrics(),
): Promise<Server | undefined> {
  if (config.metrics.port === undefined) return undefined;
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    collect()
      .then((text) => res.writeHead(200, { 'content-type': registry.contentType, 'cache-control': 'no-store' }).end(text))
      .catch((error: unknown) => {
        logger.error({ err: error }, 'metrics could not be collected');
        res.writeHead(503, { 'content-type': 'text/plain', 'retry-after': '1' }).end('metrics unavailable\n');
      });
  });
  await new Promise<void>((resolve) => server.listen(config.metrics.port, config.metrics.host, resolve));
  logger.info({ address: server.address() }, 'metrics served');
  return server;
}
