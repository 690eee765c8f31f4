import type Router from '@koa/router';
import compose from 'koa-compose';
import type { Context, Middleware, Next } from 'koa';
import type { providerRoutes } from '../oidc/provider.js';

/**
 * Every router of ours matches the case of paths exactly: `/ACCOUNT/…` is not a spelling of
 * `/account/…` (a case-insensitive prefix once let such paths skip the session and CSRF
 * middleware of their router). Trailing slashes are refused for the whole app by exactPaths.
 */
export const routerOptions = { sensitive: true } as const;

/** ASCII letters only, as oidc-provider's router folds them (non-ASCII letters never match its routes). */
const foldAscii = (text: string) => text.replace(/[a-z]/g, (letter) => letter.toUpperCase());

type ProviderRoutes = typeof providerRoutes;

/** The path templates oidc-provider answers under the configured routes (`:x` is one segment). */
export function providerPathTemplates(routes: ProviderRoutes): string[] {
  return [
    routes.authorization,
    `${routes.authorization}/:uid`,
    routes.token,
    routes.introspection,
    routes.revocation,
    routes.userinfo,
    routes.jwks,
    routes.registration,
    `${routes.registration}/:clientId`,
    routes.end_session,
    `${routes.end_session}/confirm`,
    `${routes.end_session}/success`,
    routes.code_verification,
    `${routes.code_verification}/:uid`,
    routes.device_authorization,
    routes.pushed_authorization_request,
    routes.backchannel_authentication,
    '/.well-known/openid-configuration',
    '/.well-known/oauth-authorization-server',
  ];
}

function matches(template: string[], path: string[]): boolean {
  return (
    template.length === path.length && template.every((segment, i) => (segment.startsWith(':') ? path[i] !== '' : segment === path[i]))
  );
}

/**
 * One spelling per path. A trailing slash is never part of one (`/account/password/` is 404).
 * oidc-provider's own router ignores the case of letters and a trailing slash, so `/TOKEN`
 * and `/token/` would reach the token endpoint: limits and routing of ours key on exact
 * paths, so rather than teach each of them the provider's spelling rules, the other
 * spellings get 404 here and the provider answers only the paths it publishes.
 */
export function exactPaths(routes: ProviderRoutes) {
  const templates = providerPathTemplates(routes).map((template) => template.split('/'));
  const folded = templates.map((template) => template.map((segment) => (segment.startsWith(':') ? segment : foldAscii(segment))));
  // The published spellings of the fixed paths (discovery, token, userinfo …): most requests.
  const published = new Set(providerPathTemplates(routes).filter((template) => !template.includes(':')));
  return async function refuseOtherSpellings(ctx: Context, next: Next): Promise<void> {
    const path = ctx.path;
    if (published.has(path)) return next();
    if (path.length > 1 && path.endsWith('/')) {
      ctx.status = 404;
      return;
    }
    const segments = path.split('/');
    const foldedSegments = segments.map(foldAscii);
    const answeredByProvider = folded.some((template) => matches(template, foldedSegments));
    if (answeredByProvider && !templates.some((template) => matches(template, segments))) {
      ctx.status = 404;
      return;
    }
    await next();
  };
}

/**
 * The machine-facing endpoints services call (discovery, JWKS, token, userinfo,
 * introspection, revocation, PAR, registration): JSON in and out, no
 * page of ours. They skip the page routers, whose every layer would otherwise be matched
 * against each token request.
 */
export function protocolPaths(routes: ProviderRoutes): ReadonlySet<string> {
  return new Set([
    '/.well-known/openid-configuration',
    '/.well-known/oauth-authorization-server',
    routes.jwks,
    routes.token,
    routes.userinfo,
    routes.introspection,
    routes.revocation,
    // Not device_authorization: /device/auth also matches the page-facing /device/:uid, whose
    // GET the pages lane's device form must see (fuzz.test.ts found the 500 it would be).
    routes.pushed_authorization_request,
    routes.backchannel_authentication,
    routes.registration,
  ]);
}

type Lane = (ctx: Context, next: Next) => Promise<unknown>;

/** Sends a request down `protocol` when its path is one of `paths`, else down `pages`. */
export function splitLanes(paths: ReadonlySet<string>, protocol: Lane, pages: Lane): Lane {
  return function chooseLane(ctx: Context, next: Next) {
    return paths.has(ctx.path) ? protocol(ctx, next) : pages(ctx, next);
  };
}

/** A router of our pages, and whether it answers a known path asked with the wrong method (405). */
export interface PageRouter {
  router: Router;
  allowedMethods: boolean;
}

const literalFirstSegment = /^\/([\w.~-]+)(?=$|\/|\{\/)/;

/**
 * The first path segments `router`'s routes are bound to, or undefined when a route can
 * match under any (a parameter, a pattern, a case-insensitive router). Its use() layers run
 * only once one of its routes matched, so they do not count.
 */
function firstSegmentsOf(router: Router): Set<string> | undefined {
  if (!(router.opts as { sensitive?: boolean }).sensitive) return undefined;
  const segments = new Set<string>();
  for (const layer of router.stack.filter((layer) => layer.methods.length > 0)) {
    const segment = literalFirstSegment.exec(String(layer.path))?.[1];
    if (segment === undefined) return undefined;
    segments.add(segment);
  }
  return segments;
}

/**
 * Runs, in their order, only the page routers that have a route under the request's first
 * path segment: a request for /auth would otherwise be matched against every layer of every
 * router, and pass each one's middleware, before reaching the provider. A router none of
 * whose routes can match the path answers nothing, so leaving it out changes no answer, but
 * for one thing their allowedMethods did for every request, kept here explicitly: a request
 * nothing answered, in a method outside the routers' list (TRACE, PROPFIND …), is refused
 * with `refuse()`.
 */
export function routeByFirstSegment(routers: PageRouter[], refuse: () => Error): Middleware {
  const methodErrors = { throw: true, notImplemented: refuse, methodNotAllowed: refuse };
  const bound = routers.map(({ router, allowedMethods }) => ({
    segments: firstSegmentsOf(router),
    // Router middleware asks for the router's context, which it adds itself.
    middleware: [router.routes(), ...(allowedMethods ? [router.allowedMethods(methodErrors)] : [])] as unknown as Middleware[],
  }));
  // undefined: no router refuses methods, so nothing is refused here either.
  const everyRouterImplements = routers
    .filter((entry) => entry.allowedMethods)
    .map((entry) => new Set(entry.router.methods))
    .reduce<Set<string> | undefined>(
      (common, methods) => new Set([...(common ?? methods)].filter((method) => methods.has(method))),
      undefined,
    );
  const chainFor = (segment: string | undefined) =>
    compose(
      bound
        .filter((entry) => !entry.segments || (segment !== undefined && entry.segments.has(segment)))
        .flatMap((entry) => entry.middleware),
    );
  const chains = new Map(
    [...new Set(bound.flatMap((entry) => [...(entry.segments ?? [])]))].map((segment) => [segment, chainFor(segment)]),
  );
  const otherwise = chainFor(undefined);
  return async function dispatchPageRouters(ctx: Context, next: Next): Promise<void> {
    const slash = ctx.path.indexOf('/', 1);
    const segment = ctx.path.slice(1, slash === -1 ? undefined : slash);
    await (chains.get(segment) ?? otherwise)(ctx, next);
    if (everyRouterImplements && (!ctx.status || ctx.status === 404) && !everyRouterImplements.has(ctx.method)) throw refuse();
  };
}
