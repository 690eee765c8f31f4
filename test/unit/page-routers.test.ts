import Router from '@koa/router';
import Koa from 'koa';
import compose from 'koa-compose';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { routeByFirstSegment, routerOptions, type PageRouter } from '../../src/http/routing.js';

/*
 * Performance issue: page requests pass only the routers that have a route under their first
 * path segment, with the same answers as passing all of them in turn.
 */

const refuse = () => Object.assign(new Error('method not allowed'), { status: 405, expose: true });

function routers(withRouteUnderAnySegment = true): PageRouter[] {
  const health = new Router(routerOptions);
  health.get('/healthz', (ctx) => (ctx.body = 'ok'));
  const account = new Router({ ...routerOptions, prefix: '/account' });
  account.use(async (ctx, next) => {
    ctx.set('x-account-middleware', 'yes');
    await next();
  });
  account.get('/', (ctx) => (ctx.body = 'account'));
  account.post('/profile', (ctx) => (ctx.body = 'saved'));
  const streams = new Router(routerOptions);
  streams.use(async (ctx, next) => {
    ctx.set('x-json', 'yes');
    await next();
  });
  streams.get('/.well-known/ssf-configuration', (ctx) => (ctx.body = { ok: true }));
  streams.delete('/ssf/stream', (ctx) => (ctx.status = 204));
  const anywhere = new Router(routerOptions);
  anywhere.get('/:page/help', (ctx) => (ctx.body = `help for ${ctx.params['page']}`));
  return [
    { router: health, allowedMethods: false },
    { router: account, allowedMethods: true },
    { router: streams, allowedMethods: true },
    ...(withRouteUnderAnySegment ? [{ router: anywhere, allowedMethods: true }] : []),
  ];
}

/** What the app did before: every router, then its allowedMethods, in turn. */
function everyRouter(entries: PageRouter[]): Koa.Middleware {
  const errors = { throw: true, notImplemented: refuse, methodNotAllowed: refuse };
  return compose(
    entries.flatMap(({ router, allowedMethods }) => [router.routes(), ...(allowedMethods ? [router.allowedMethods(errors)] : [])]),
  ) as unknown as Koa.Middleware;
}

function appWith(dispatch: Koa.Middleware): Koa {
  const app = new Koa();
  app.use(async (ctx, next) => {
    try {
      await next();
    } catch (error) {
      ctx.status = (error as { status?: number }).status ?? 500;
      ctx.body = 'refused';
    }
  });
  app.use(dispatch);
  // The provider's place: answers /auth, nothing else.
  app.use((ctx) => {
    if (ctx.path === '/auth' && ctx.method === 'GET') ctx.body = 'provider';
  });
  return app;
}

const requests: [string, string][] = [
  ['GET', '/healthz'],
  ['GET', '/account'],
  ['POST', '/account/profile'],
  ['GET', '/account/profile'],
  ['PUT', '/account/profile'],
  ['OPTIONS', '/account/profile'],
  ['GET', '/ACCOUNT'],
  ['GET', '/.well-known/ssf-configuration'],
  ['DELETE', '/ssf/stream'],
  ['GET', '/ssf/stream'],
  ['GET', '/auth'],
  ['POST', '/auth'],
  ['DELETE', '/auth'],
  ['TRACE', '/auth'],
  ['PROPFIND', '/account'],
  ['GET', '/account/help'],
  ['GET', '/auth/help'],
  ['GET', '/nothing/here'],
  ['GET', '/'],
];

describe('page routers dispatched by first path segment', () => {
  it.each(requests.flatMap(([method, path]) => [true, false].map((anywhere) => [method, path, anywhere] as const)))(
    'answers %s %s as passing every router in turn does (a route under any segment: %s)',
    async (method, path, anywhere) => {
      const answer = async (app: Koa) => {
        const agent = request(app.callback());
        const response = await agent[method.toLowerCase() as 'get'](path).ok(() => true);
        return {
          status: response.status,
          body: response.text,
          allow: response.headers['allow'],
          headers: response.headers['x-account-middleware'],
        };
      };
      const before = await answer(appWith(everyRouter(routers(anywhere))));
      const after = await answer(appWith(routeByFirstSegment(routers(anywhere), refuse)));
      expect(after).toEqual(before);
    },
  );

  it('refuses no method when no router answers a known path with 405, as none of them would', async () => {
    const entries = routers(false).map((entry) => ({ ...entry, allowedMethods: false }));
    const app = appWith(routeByFirstSegment(entries, refuse));
    await request(app.callback()).trace('/auth').expect(404);
    await request(app.callback()).get('/healthz').expect(200, 'ok');
  });

  it('matches a request for a path no router claims against none of the routers bound to other segments', async () => {
    const entries = routers();
    const matched: string[] = [];
    for (const [index, { router }] of entries.entries()) {
      const match = router.match.bind(router);
      router.match = (path, method) => {
        matched.push(String(index));
        return match(path, method);
      };
    }
    await request(appWith(routeByFirstSegment(entries, refuse)).callback())
      .get('/auth')
      .expect(200, 'provider');
    // Only the router with a route under any first segment (/:page/help) was asked.
    expect(matched).toEqual(['3']);
  });
});
