import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import Koa from 'koa';
import compose from 'koa-compose';
import Router from '@koa/router';
import mount from 'koa-mount';
import type Provider from 'oidc-provider';
import { isSecureIssuer, type Config } from '../config.js';
import type { Database } from '../db/index.js';
import type { Logger } from '../logger.js';
import { installDurableBackchannelLogout, type DeliveryWorker } from '../oidc/backchannel.js';
import { startEventDelivery } from '../oidc/event-delivery.js';
import { startKeyRefresh, type KeyRefresh } from '../oidc/key-refresh.js';
import { buildProvider, providerRoutes } from '../oidc/provider.js';
import { configurePasswordWork } from '../security/password-work.js';
import { trackServiceUsage } from '../oidc/service-usage.js';
import { trackSessionDevices } from '../oidc/session-devices.js';
import { sessionUidByCookie } from '../oidc/artefacts.js';
import { createMailer } from '../mail/mailer.js';
import { startMailDelivery } from '../mail/smtp-delivery.js';
import { idleWorker } from '../db/delivery-loop.js';
import { listenForChanges, type ChangeNotices } from '../db/change-notices.js';
import { cachedKeyRing } from '../oidc/keys.js';
import { cookieSignatures } from '../security/cookie-signatures.js';
import { errorBoundary } from './errors.js';
import { frontChannelLogout } from './frontchannel-logout.js';
import { healthRoutes, publicMetricsRoute } from './health.js';
import { interactionRoutes } from './interactions.js';
import { accountRoutes } from './account/routes.js';
import { emailLinkRoutes } from './email-links.js';
import { languageRoutes } from './language.js';
import { deviceCodeForm } from './device-code-form.js';
import { passwordResetRoutes } from './password-reset.js';
import { eventStreamRoutes } from './event-streams.js';
import { acceptPostedRequests } from './post-requests.js';
import type { SelfServiceDeps } from './self-service.js';
import { instrumentProvider, registerDatabaseMetrics } from './metrics.js';
import { providerPages } from './pages.js';
import { protocolMetadata } from './protocol-metadata.js';
import { pageContext, viewsDirectory } from './render.js';
import { requestLogging, requestTracing } from './request-log.js';
import { exactPaths, protocolPaths, providerPathTemplates, routeByFirstSegment, routerOptions, splitLanes } from './routing.js';
import { baselineSecurityHeaders, pageSecurityHeaders } from './security-headers.js';
import { Throttle } from '../security/throttle.js';
import { tokenEndpointThrottle } from './token-throttle.js';

/**
 * The static files of the pages: the stylesheet, SimpleWebAuthn's browser bundle (as
 * published, from node_modules) and the passkey script that uses it. Same origin, so the
 * Content-Security-Policy needs no exception and no inline script.
 */
function staticRoutes(): Router {
  const browserBundle = join(
    dirname(createRequire(import.meta.url).resolve('@simplewebauthn/browser')),
    '..',
    'dist',
    'bundle',
    'index.umd.min.js',
  );
  const files: Record<string, { type: string; body: Buffer }> = {
    '/static/style.css': { type: 'text/css', body: readFileSync(join(viewsDirectory, 'static', 'style.css')) },
    '/static/passkeys.js': { type: 'text/javascript', body: readFileSync(join(viewsDirectory, 'static', 'passkeys.js')) },
    '/static/webauthn.js': { type: 'text/javascript', body: readFileSync(browserBundle) },
  };
  const router = new Router(routerOptions);
  for (const [path, file] of Object.entries(files)) {
    router.get(path, (ctx) => {
      ctx.type = file.type;
      ctx.set('cache-control', 'public, max-age=3600');
      ctx.body = file.body;
    });
  }
  return router;
}

// Unknown methods (TRACE, PROPFIND …) are the client's mistake: 405 through the error boundary, not 501.
const methodNotAllowed = () => Object.assign(new Error('method not allowed'), { status: 405, expose: true });

/**
 * Every request is answered as a request for the issuer: oidc-provider builds discovery's
 * endpoint URLs and the logout form's action from the Host header (X-Forwarded-Host behind a
 * trusted proxy), so whatever host a client or a proxy names is replaced by the issuer's
 * before anything reads it. Behind trusted proxies an https issuer is also the scheme.
 */
function answerAsTheIssuer(config: Config) {
  const { host, protocol } = new URL(config.issuer);
  const pinScheme = config.trustProxy && protocol === 'https:';
  return async function useIssuerHost(ctx: Koa.Context, next: Koa.Next): Promise<void> {
    const headers = ctx.req.headers;
    headers.host = host;
    delete headers['x-forwarded-host'];
    if (pinScheme) headers['x-forwarded-proto'] = 'https';
    await next();
  };
}

export interface IdentityApp {
  app: Koa;
  provider: Provider;
  /** Every path template the app answers (ours and the provider's), for tools and tests that must cover each. */
  routePaths: string[];
  /** Sends queued back-channel logout tokens; stop it on shutdown. */
  logoutDeliveries: DeliveryWorker;
  /** Pushes queued security events to services' streams; stop it on shutdown. */
  eventDeliveries: DeliveryWorker;
  /** Sends queued mail over SMTP (idle without SMTP_URL); stop it on shutdown. */
  mailDeliveries: DeliveryWorker;
  /** Re-reads signing and cookie keys every KEY_REFRESH_SECONDS; stop it on shutdown. */
  keyRefresh: KeyRefresh;
  /** The connection that keeps in-process caches true to Postgres; stop it on shutdown. */
  changeNotices: ChangeNotices;
}

/** The request's path through the server, top to bottom. */
export async function createApp(config: Config, db: Database, logger: Logger): Promise<IdentityApp> {
  configurePasswordWork(config.passwordHashing);
  if (isSecureIssuer(config) && config.allowDatabaseHeldKeys && !(config.cookieKeys && config.keyEncryptionKeys)) {
    logger.error(
      'ALLOW_DATABASE_HELD_KEYS=true: cookie keys or the key-encryption key are kept in the database, so anyone with a database dump can forge sessions and read signing keys; set COOKIE_KEYS and KEY_ENCRYPTION_KEY',
    );
  }
  const throttle = new Throttle(db, config.rateLimits, config.devicePollIntervalSeconds);
  const changeNotices = listenForChanges(db, logger);
  const { provider, cookieKeys, signingKids } = await buildProvider(config, db, logger, providerPages, {
    devicePollTooSoon: (deviceCode) => throttle.devicePollTooSoon(deviceCode),
    changeNotices,
  });
  const logoutDeliveries = installDurableBackchannelLogout(provider, db, logger, { ...config.logoutDelivery, batchSize: 20 });
  const eventDeliveries = startEventDelivery(provider, db, logger, {
    ...config.eventDelivery,
    batchSize: 20,
    allowPrivateNetworkFetch: config.allowPrivateNetworkFetch,
  });
  // Behind trusted proxies the client is the address the nearest of them saw: the rightmost
  // TRUSTED_PROXY_HOPS entries of X-Forwarded-For, never one the client wrote to its left.
  const app = new Koa({ proxy: config.trustProxy, maxIpsCount: config.trustedProxyHops });
  // Must equal the provider's cookie keys: mounted, it signs cookies with the outer app's keys.
  app.keys = cookieSignatures(cookieKeys);
  const keyRefresh = startKeyRefresh({ db, config, logger, provider, app }, { signingKids, cookieKeys });
  registerDatabaseMetrics(db);
  instrumentProvider(provider);

  // Only with a collector: without one, requests pass no tracing middleware at all.
  if (config.telemetry.endpoint) app.use(requestTracing());
  app.use(requestLogging(logger));
  app.use(answerAsTheIssuer(config));
  // Every answer, errors included, carries the strict set; the pages lane replaces it with the pages' policy.
  app.use(baselineSecurityHeaders(config));
  app.use(errorBoundary(logger));

  const health = healthRoutes(db);
  const styles = staticRoutes();
  const mailKeys = cachedKeyRing(db, config);
  const mailer = createMailer(config, db, logger, mailKeys);
  // Queued mail is sent by every instance's worker, each message once (mail/smtp-delivery.ts).
  const mailDeliveries = config.mail.smtpUrl ? startMailDelivery(config, db, mailKeys, logger) : idleWorker;
  const selfService: SelfServiceDeps = { config, db, provider, throttle, mailer, logger };
  trackServiceUsage(provider, db, logger);
  trackSessionDevices(provider, db, logger);
  const interactions = interactionRoutes(selfService);
  const account = accountRoutes(selfService);
  const emailLinks = emailLinkRoutes(selfService);
  const passwordReset = passwordResetRoutes(selfService);
  const language = languageRoutes();
  const publicMetrics = publicMetricsRoute(config);
  const eventStreams = eventStreamRoutes(selfService);
  app.use(exactPaths(providerRoutes));
  const provided = mount(provider);
  const throttleTokenRequests = tokenEndpointThrottle(throttle, providerRoutes);
  const metadataPaths = new Set(['/.well-known/openid-configuration', '/.well-known/oauth-authorization-server', providerRoutes.jwks]);
  // Services' machine-to-machine calls: only what they need on the way to the provider.
  const protocolLane = compose<Koa.Context>([protocolMetadata(provider, metadataPaths), throttleTokenRequests, provided]);
  // People's browsers: our pages, then the provider's browser endpoints (authorize, logout, device).
  const pageLane = compose<Koa.Context>([
    pageContext(config),
    pageSecurityHeaders(config),
    routeByFirstSegment(
      [
        ...[health, publicMetrics, styles, language].map((router) => ({ router, allowedMethods: false })),
        ...[eventStreams, interactions, account, emailLinks, passwordReset].map((router) => ({ router, allowedMethods: true })),
      ],
      methodNotAllowed,
    ),
    acceptPostedRequests(providerRoutes),
    throttleTokenRequests,
    deviceCodeForm(provider, throttle, providerRoutes, async (cookie) => (await sessionUidByCookie(db, cookie)) !== undefined),
    frontChannelLogout(provider, db, config.issuer),
    provided,
  ] as Koa.Middleware[]);
  app.use(splitLanes(protocolPaths(providerRoutes), protocolLane, pageLane));
  const routers = [health, styles, language, publicMetrics, eventStreams, interactions, account, emailLinks, passwordReset];
  const routePaths = [
    ...new Set([
      ...routers.flatMap((router) => router.stack.filter((layer) => layer.methods.length > 0).map((layer) => String(layer.path))),
      ...providerPathTemplates(providerRoutes),
    ]),
  ];
  return { app, provider, logoutDeliveries, eventDeliveries, mailDeliveries, keyRefresh, changeNotices, routePaths };
}
