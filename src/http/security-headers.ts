import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Context, Next } from 'koa';
import helmet, { type HelmetOptions } from 'helmet';
import { isSecureIssuer, type Config } from '../config.js';

/**
 * The set every answer starts with, and all a services' JSON endpoint needs (OWASP REST
 * Security): a policy that forbids every resource and every frame, nosniff, no framing, no
 * referrer, HSTS under https. Built once; a request sets a few fixed headers instead of
 * running helmet's dozen middlewares.
 */
export function baselineSecurityHeaders(config: Config) {
  const headers: [string, string][] = [
    ['content-security-policy', "default-src 'none'; frame-ancestors 'none'"],
    ['x-content-type-options', 'nosniff'],
    ['x-frame-options', 'DENY'],
    ['referrer-policy', 'no-referrer'],
    ...(isSecureIssuer(config) ? [['strict-transport-security', 'max-age=31536000; includeSubDomains'] as [string, string]] : []),
  ];
  return async function setBaselineHeaders(ctx: Context, next: Next): Promise<void> {
    for (const [name, value] of headers) ctx.set(name, value);
    await next();
  };
}

/**
 * The headers helmet sets with `options`, computed once: every directive here is a fixed
 * string (no per-request nonce), so its answer is the same for every request. helmet still
 * defines the set; a request only copies it (a few µs less than building it each time).
 */
function helmetHeaders(options: HelmetOptions): [string, string][] {
  const headers: [string, string][] = [];
  let done = false;
  const response = {
    setHeader(name: string, value: string | number | readonly string[]) {
      headers.push([name.toLowerCase(), String(value)]);
    },
    removeHeader() {},
  };
  helmet(options)({} as IncomingMessage, response as unknown as ServerResponse, (error?: unknown) => {
    if (error) throw error instanceof Error ? error : new Error(String(error));
    done = true;
  });
  if (!done || headers.length === 0) throw new Error('helmet did not set its headers synchronously');
  return headers;
}

/**
 * What our pages and the provider's browser endpoints add to the baseline: their own
 * Content-Security-Policy (replacing the baseline's) and the rest of helmet's set. The
 * headers the baseline already sets are left to it, so each is defined once.
 */
export function pageSecurityHeaders(config: Config) {
  const headers = helmetHeaders({
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
        ...(isSecureIssuer(config) ? { 'upgrade-insecure-requests': [] } : {}),
      },
    },
    crossOriginEmbedderPolicy: false,
    strictTransportSecurity: false,
    referrerPolicy: false,
    xFrameOptions: false,
    xContentTypeOptions: false,
  });
  return async function setPageHeaders(ctx: Context, next: Next): Promise<void> {
    for (const [name, value] of headers) ctx.set(name, value);
    await next();
  };
}
