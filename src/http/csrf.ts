import Tokens from 'csrf';
import type { Context, Next } from 'koa';
import { InvalidInput } from '../errors.js';

const tokens = new Tokens();
const SECRET_COOKIE = 'idp.csrf';

/**
 * Synchroniser-token CSRF protection: a per-browser secret in a signed, httpOnly cookie and
 * a token derived from it in every form. Forms post it back as `_csrf`.
 */
export async function issueCsrfToken(ctx: Context, next: Next): Promise<void> {
  let secret = ctx.cookies.get(SECRET_COOKIE, { signed: true });
  if (!secret) {
    secret = tokens.secretSync();
    ctx.cookies.set(SECRET_COOKIE, secret, { httpOnly: true, sameSite: 'lax', signed: true, overwrite: true });
  }
  ctx.state['csrfSecret'] = secret;
  ctx.state['csrfToken'] = tokens.create(secret);
  await next();
}

export function assertCsrfToken(ctx: Context, submitted: unknown): void {
  const secret = ctx.state['csrfSecret'] as string | undefined;
  if (!secret || typeof submitted !== 'string' || !tokens.verify(secret, submitted)) {
    throw new CsrfFailure('This form has expired. Go back, reload the page and try again.');
  }
}

export class CsrfFailure extends InvalidInput {
  override name = 'CsrfFailure';
}
