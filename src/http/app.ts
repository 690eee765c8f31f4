import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Koa from 'koa';
import Router from '@koa/router';
import helmet from 'koa-helmet';
import mount from 'koa-mount';
import type Provider from 'oidc-provider';
import { isSecureIssuer, type Config } from '../config.js';
import type { Database } from '../db/index.js';
import type { Logger } from '../logger.js';
import { buildProvider } from '../oidc/provider.js';
import { errorBoundary } from './errors.js';
import { healthRoutes } from './health.js';
import { interactionRoutes } from './interactions.js';
import { registerDatabaseMetrics } from './metrics.js';
import { providerPages } from './pages.js';
import { viewsDirectory } from './render.js';
import { requestLogging } from './request-log.js';
import { Throttle } from '../security/throttle.js';
import { tokenEndpointThrottle } from './token-throttle.js';

function securityHeaders(config: Config) {
  const secure = isSecureIssuer(config);
  return helmet({
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        'default-src': ["'self'"],
        // oidc-provider adds the hash of its form_post auto-submit script to script-src.
        'script-src': ["'self'"],
        'style-src': ["'self'"],
        'img-src': ["'self'", 'data:'],
        'object-src': ["'none'"],
        'base-uri': ["'none'"],
        'frame-ancestors': ["'none'"],
        // No form-action: browsers apply it to the redirect back to the service after a form post.
        ...(secure ? { 'upgrade-insecure-requests': [] } : {}),
      },
    },
    strictTransportSecurity: secure ? { maxAge: 31536000, includeSubDomains: true } : false,
    referrerPolicy: { policy: 'no-referrer' },
    crossOriginEmbedderPolicy: false,
    xFrameOptions: { action: 'deny' },
  });
}

function stylesheetRoute(): Router {
  const css = readFileSync(join(viewsDirectory, 'static', 'style.css'));
  const router = new Router();
  router.get('/static/style.css', (ctx) => {
    ctx.type = 'text/css';
    ctx.set('cache-control', 'public, max-age=3600');
    ctx.body = css;
  });
  return router;
}

export interface IdentityApp {
  app: Koa;
  provider: Provider;
}

/** The request's path through the server, top to bottom. */
export async function createApp(config: Config, db: Database, logger: Logger): Promise<IdentityApp> {
  const { provider, cookieKeys } = await buildProvider(config, db, logger, providerPages);
  const app = new Koa({ proxy: config.trustProxy });
  // Must equal the provider's cookie keys: mounted, it signs cookies with the outer app's keys.
  app.keys = cookieKeys;
  registerDatabaseMetrics(db);

  app.use(requestLogging(logger));
  app.use(errorBoundary(logger));
  app.use(securityHeaders(config));

  const health = healthRoutes(db);
  const styles = stylesheetRoute();
  const throttle = new Throttle(db, config.rateLimits);
  const interactions = interactionRoutes(provider, db, throttle);
  app.use(health.routes());
  app.use(styles.routes());
  app.use(interactions.routes()).use(interactions.allowedMethods());
  app.use(tokenEndpointThrottle(throttle));
  app.use(mount(provider));
  return { app, provider };
}
