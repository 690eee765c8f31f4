import type { Context, Next } from 'koa';
import { errors as oidcErrors } from 'oidc-provider';
import { Conflict, DomainError, InvalidInput, NotFound, TooManyAttempts, Unavailable } from '../errors.js';
import type { Logger } from '../logger.js';
import { renderPage } from './render.js';

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

function userMessage(error: unknown, status: number): string {
  if (error instanceof oidcErrors.SessionNotFound) {
    return 'This sign-in page has expired or was opened in another browser. Return to the service and sign in again.';
  }
  if (error instanceof DomainError) return error.message;
  if (status === 503) return 'The service is temporarily unavailable. Please try again in a moment.';
  if (status === 404) return 'The page you asked for does not exist.';
  if (status === 413) return 'The request was too large.';
  if (status < 500) return 'The request could not be understood.';
  return 'Something went wrong on our side. Please try again.';
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
      const message = userMessage(error, status);
      if (status === 503) ctx.set('retry-after', '5');
      if (error instanceof TooManyAttempts) ctx.set('retry-after', String(error.retryAfterSeconds));
      if (wantsHtml(ctx)) {
        renderPage(
          ctx,
          'error',
          { title: 'Something went wrong', heading: status === 404 ? 'Page not found' : 'We could not complete this request', message },
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
