import Router from '@koa/router';
import { issueCsrfToken } from '../csrf.js';
import { routerOptions } from '../routing.js';
import type { SelfServiceDeps } from '../self-service.js';
import { activityRoutes } from './activity.js';
import { dataRoutes } from './data.js';
import { passwordRoutes } from './password.js';
import { profileRoutes } from './profile.js';
import { securityRoutes } from './security.js';
import { serviceRoutes } from './services.js';
import { accountSignInRoutes } from './sign-in.js';
import { loadAccountSession, requireSignIn } from './session.js';

/** Paths under /account that work without an account-page session: signing in (with its steps) and the goodbye page. */
const isOpenPath = (path: string) => path === '/account/sign-in' || path.startsWith('/account/sign-in/') || path === '/account/deleted';

/**
 * The account pages. They have their own sign-in and session rather than being a client of
 * this provider: they are part of the provider, they should not appear as a "connected
 * service" of every person, and managing the account (deleting it, changing the password)
 * deserves a fresh password prompt instead of riding on a two-week single sign-on session.
 */
export function accountRoutes(deps: SelfServiceDeps): Router {
  const router = new Router({ ...routerOptions, prefix: '/account' });
  router.use(issueCsrfToken);
  router.use(loadAccountSession(deps));
  router.use((ctx, next) => (isOpenPath(ctx.path) ? next() : requireSignIn(ctx, next)));
  accountSignInRoutes(router, deps);
  profileRoutes(router, deps);
  passwordRoutes(router, deps);
  securityRoutes(router, deps);
  serviceRoutes(router, deps);
  activityRoutes(router, deps);
  dataRoutes(router, deps);
  return router;
}
