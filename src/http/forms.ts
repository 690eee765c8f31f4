import { bodyParser } from '@koa/bodyparser';
import type { Context } from 'koa';
import type { z } from 'zod';
import { assertCsrfToken } from './csrf.js';
import { PageError } from './errors.js';

/** A urlencoded-form parser of at most `limit`; a body that does not decode (bad Content-Encoding, broken gzip) is the client's mistake (400). */
export function formParser(limit: string) {
  return bodyParser({
    enableTypes: ['form'],
    formLimit: limit,
    encoding: 'utf-8',
    onError(error) {
      const status = (error as { status?: number }).status;
      throw status && status >= 400 && status < 500 ? error : new PageError('validation.form');
    },
  });
}

/** urlencoded forms only, small: every form of the hosted pages fits in 16 kB. */
export const formBody = formParser('16kb');

/**
 * Reads a posted form: first its shape (strings of sane length; what the values must look
 * like is checked later, with messages people read), then its CSRF token.
 */
export function readForm<T extends z.ZodType>(ctx: Context, schema: T): z.output<T> {
  const parsed = schema.safeParse(ctx.request.body ?? {});
  if (!parsed.success) throw new PageError('validation.form');
  assertCsrfToken(ctx, (parsed.data as { _csrf?: string })._csrf);
  return parsed.data;
}
