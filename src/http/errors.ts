import type { Context, Next } from 'koa';
import { errors as oidcErrors } from 'oidc-provider';
import { Conflict, InvalidInput, NotFound, Overloaded, TooManyAttempts, Unavailable } from '../errors.js';
import type { PlainKey, Translate } from '../i18n/catalogue.js';
import type { Logger } from '../logger.js';
import { CsrfFailure } from './csrf.js';
import { pageTranslator, renderPage } from './render.js';

/** Bad input from a page, with the catalogue key of what to tell the person. */
export class PageError extends InvalidInput {
  override name = 'PageError';
  constructor(readonly key: PlainKey) {
    super(key);
  }
}

/** The one place errors become HTTP statuses. */
export function statusForError(error: unknown): number {
  if (error instanceof InvalidInput) return 400;
  if (error instanceof NotFound) return 404;
  if (error instanceof Conflict) return 409;
  if (error instanceof Unavailable) return 503;
  if (error instanceof TooManyAttempts) return 429;
  if (error instanceof oidcErrors.OIDCProviderError) return error.status;
  const status = (error as { status?: unknown; expose?: unknown }).status;
  // Koa/http-errors for malformed requests (bad JSON, body too large, bad content type).
  if (typeof status === 'number' && status >= 400 && status < 500) return status;
  return 500;
}

/** "Try again in …" in the reader's language. */
export function tooManyAttemptsMessage(t: Translate, error: TooManyAttempts): string {
  const seconds = error.retryAfterSeconds;
  return seconds < 90
    ? t('tooManyAttempts.seconds', { n: Math.max(1, seconds) })
    : t('tooManyAttempts.minutes', { n: Math.ceil(seconds / 60) });
}

/** What to tell the person, chosen by the error's type: domain messages are English, for logs and the CLI. */
function userMessage(t: Translate, error: unknown, status: number): string {
  if (error instanceof oidcErrors.SessionNotFound) return t('error.sessionNotFound');
  if (error instanceof PageError) return t(error.key);
  if (error instanceof CsrfFailure) return t('error.csrf');
  if (error instanceof TooManyAttempts) return tooManyAttemptsMessage(t, error);
  if (error instanceof Conflict) return t('error.conflict');
  if (status === 503) return t('error.unavailable');
  if (status === 404) return t('error.notFound');
  if (status === 413) return t('error.tooLarge');
  if (status < 500) return t('error.badRequest');
  return t('error.server');
}

function wantsHtml(ctx: Context): boolean {
  return ctx.accepts(['html', 'json']) === 'html';
}

/** Catches everything thrown below it: logs server faults, never shows a stack trace. */
export function errorBoundary(logger: Logger) {
  return async function handleErrors(ctx: Context, next: Next): Promise<void> {
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined) {
        throw new NotFound('not found');
      }
    } catch (error) {
      const status = statusForError(error);
      const log = (ctx.state['log'] as Logger | undefined) ?? logger;
      if (status >= 500) log.error({ err: error }, 'request failed');
      const message = userMessage(pageTranslator(ctx), error, status);
      if (status === 503) ctx.set('retry-after', String(error instanceof Overloaded ? error.retryAfterSeconds : 5));
      if (error instanceof TooManyAttempts) ctx.set('retry-after', String(error.retryAfterSeconds));
      if (wantsHtml(ctx)) {
        renderPage(
          ctx,
          'error',
          { title: 'error.title', heading: status === 404 ? 'error.notFoundHeading' : 'error.heading', message },
          status,
        );
      } else {
        ctx.status = status;
        const code =
          status >= 500 ? 'server_error' : status === 404 ? 'not_found' : status === 429 ? 'too_many_requests' : 'invalid_request';
        ctx.body = { error: code, error_description: message };
      }
    }
  };
}
