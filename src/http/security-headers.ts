import type { Context, Next } from 'koa';
import helmet from 'koa-helmet';
import { isSecureIssuer, type Config } from '../config.js';

/** The headers of our pages and the provider's browser endpoints: a strict Content-Security-Policy and the rest of helmet's set. */
export function pageSecurityHeaders(config: Config) {
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

/**
 * The strict set every answer starts with, and all a services' JSON endpoint needs (OWASP
 * REST Security): the policy forbids every resource and every frame. Built once; a request
 * sets a few fixed headers instead of running helmet's dozen middlewares. Pages replace it
 * with pageSecurityHeaders.
 */
export function protocolSecurityHeaders(config: Config) {
  const headers: [string, string][] = [
    ['content-security-policy', "default-src 'none'; frame-ancestors 'none'"],
    ['x-content-type-options', 'nosniff'],
    ['x-frame-options', 'DENY'],
    ['referrer-policy', 'no-referrer'],
    ...(isSecureIssuer(config) ? [['strict-transport-security', 'max-age=31536000; includeSubDomains'] as [string, string]] : []),
  ];
  return async function setProtocolHeaders(ctx: Context, next: Next): Promise<void> {
    for (const [name, value] of headers) ctx.set(name, value);
    await next();
  };
}
