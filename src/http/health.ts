import Router from '@koa/router';
import type { Database } from '../db/index.js';
import { registry } from './metrics.js';

export function healthRoutes(db: Database): Router {
  const router = new Router();
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
  router.get('/metrics', async (ctx) => {
    ctx.set('cache-control', 'no-store');
    ctx.type = registry.contentType;
    ctx.body = await registry.metrics();
  });
  return router;
}
