import { Pool } from 'undici';

export interface Reply {
  status: number;
  location: string | undefined;
  body: string;
}

interface StoredCookie {
  name: string;
  value: string;
  path: string;
}

/** Just enough of a browser's cookie store for one host: name, value, path; deletion by expiry. */
export class CookieJar {
  private readonly cookies = new Map<string, StoredCookie>();

  store(setCookie: string | string[] | undefined): void {
    for (const line of typeof setCookie === 'string' ? [setCookie] : (setCookie ?? [])) {
      const [pair = '', ...attributes] = line.split(';').map((part) => part.trim());
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq);
      const value = pair.slice(eq + 1);
      let path = '/';
      let expired = value === '';
      for (const attribute of attributes) {
        const [key = '', attributeValue = ''] = attribute.split('=');
        const lower = key.toLowerCase();
        if (lower === 'path') path = attributeValue;
        else if (lower === 'max-age' && Number(attributeValue) <= 0) expired = true;
        else if (lower === 'expires' && Date.parse(attributeValue) < Date.now()) expired = true;
      }
      if (expired) this.cookies.delete(`${name};${path}`);
      else this.cookies.set(`${name};${path}`, { name, value, path });
    }
  }

  header(path: string): string {
    const parts: string[] = [];
    for (const cookie of this.cookies.values()) if (path.startsWith(cookie.path)) parts.push(`${cookie.name}=${cookie.value}`);
    return parts.join('; ');
  }
}

/** Sends requests over a bounded keep-alive pool to one origin (loopback only). */
export class Http {
  readonly pool: Pool;

  constructor(
    readonly origin: string,
    connections: number,
  ) {
    if (!/^http:\/\/(127\.\d+\.\d+\.\d+|localhost)(:\d+)?$/.test(origin)) throw new Error(`refusing a non-loopback target: ${origin}`);
    this.pool = new Pool(origin, { connections, pipelining: 1, keepAliveTimeout: 4000 });
  }

  async request(
    method: 'GET' | 'POST',
    url: string,
    options: { jar?: CookieJar; form?: Record<string, string>; headers?: Record<string, string> } = {},
  ): Promise<Reply> {
    const target = new URL(url, this.origin);
    const path = target.pathname + target.search;
    const headers: Record<string, string> = { accept: 'text/html,application/json', ...options.headers };
    const cookie = options.jar?.header(target.pathname);
    if (cookie) headers['cookie'] = cookie;
    let body: string | undefined;
    if (options.form) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      body = new URLSearchParams(options.form).toString();
    }
    const response = await this.pool.request({ method, path, headers, body });
    options.jar?.store(response.headers['set-cookie']);
    const location = response.headers['location'];
    return {
      status: response.statusCode,
      location: typeof location === 'string' ? new URL(location, this.origin).href : undefined,
      body: await response.body.text(),
    };
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}

export function basicAuth(id: string, secret: string): Record<string, string> {
  return { authorization: `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}` };
}

export class UnexpectedReply extends Error {
  constructor(step: string, reply: Reply) {
    super(`${step}: HTTP ${reply.status} ${reply.location ?? ''} ${reply.body.slice(0, 2000)}`);
  }
}

export function expectStatus(step: string, reply: Reply, ...statuses: number[]): Reply {
  if (!statuses.includes(reply.status)) throw new UnexpectedReply(step, reply);
  return reply;
}
