import type { Context, Next } from 'koa';
import type Provider from 'oidc-provider';
import { publishedKeySet } from '../oidc/internals.js';

interface Answer {
  body: Buffer;
  headers: [string, string][];
  route: string;
}

/**
 * Discovery and the JWKS: the two documents every client library fetches, the same for
 * every plain GET until the signing keys change.
 *
 * - Services may cache them briefly (shorter than a key's activation delay).
 * - The provider builds each document once per key set. Later GETs get the bytes and
 *   headers it produced, without the provider's middleware, where about three quarters of
 *   such a request's CPU went (bench/RESULTS.md, fourth round).
 * - A new key set, from any door, is a new object in the provider, so it makes the next
 *   request build again.
 * - A request with an Origin takes the provider's path, because its CORS answer echoes
 *   the origin. So do other methods and non-200 answers.
 */
export function protocolMetadata(provider: Provider, paths: ReadonlySet<string>) {
  const answers = new Map<string, Answer>();
  let keySet = publishedKeySet(provider);

  return async function answerProtocolMetadata(ctx: Context, next: Next): Promise<void> {
    if (!paths.has(ctx.path) || ctx.method !== 'GET') return next();
    if (ctx.get('origin') === '') await answerFromCache(ctx, next);
    else await next();
    if (ctx.status === 200) ctx.set('cache-control', 'public, max-age=300');
  };

  async function answerFromCache(ctx: Context, next: Next): Promise<void> {
    const current = publishedKeySet(provider);
    if (current !== keySet) {
      answers.clear();
      keySet = current;
    }
    // The provider writes endpoint URLs with the request's scheme (behind a proxy, its X-Forwarded-Proto).
    const key = `${ctx.protocol} ${ctx.path}`;
    const answer = answers.get(key);
    if (answer) {
      for (const [name, value] of answer.headers) ctx.set(name, value);
      ctx.state['route'] = answer.route;
      ctx.body = answer.body;
      return;
    }
    const before = new Set(Object.keys(ctx.response.headers));
    await next();
    const route = (ctx as Context & { oidc?: { route?: string } }).oidc?.route;
    if (ctx.status !== 200 || !route || ctx.body === null || typeof ctx.body !== 'object' || Buffer.isBuffer(ctx.body)) return;
    const body = Buffer.from(JSON.stringify(ctx.body));
    const headers = Object.entries(ctx.response.headers)
      .filter(([name]) => !before.has(name) && name !== 'content-length')
      .map(([name, value]): [string, string] => [name, String(value)]);
    // Kept only if the key set is still the one the document was built from.
    if (publishedKeySet(provider) === keySet) answers.set(key, { body, headers, route: `oidc:${route}` });
    ctx.body = body;
  }
}
