import { CookieJar } from 'tough-cookie';

export interface PageResponse {
  status: number;
  url: string;
  location: string | undefined;
  headers: Headers;
  body: string;
}

/** A cookie-keeping HTTP client that behaves like a browser without JavaScript. */
export class UserAgent {
  readonly jar = new CookieJar();

  /** `headers` go with every request (a browser's User-Agent, the X-Forwarded-For its proxy adds). */
  constructor(private readonly defaults: { headers?: Record<string, string> } = {}) {}

  async request(
    url: string,
    init: { method?: string; form?: Record<string, string | string[]>; headers?: Record<string, string> } = {},
  ): Promise<PageResponse> {
    const headers = new Headers({ ...this.defaults.headers, ...init.headers });
    headers.set('accept', 'text/html');
    const cookie = await this.jar.getCookieString(url);
    if (cookie) headers.set('cookie', cookie);
    let body: string | undefined;
    if (init.form) {
      headers.set('content-type', 'application/x-www-form-urlencoded');
      // A field given several values (ticked checkboxes of one name) is sent once per value.
      body = new URLSearchParams(
        Object.entries(init.form).flatMap(([name, value]) =>
          (Array.isArray(value) ? value : [value]).map((one): [string, string] => [name, one]),
        ),
      ).toString();
    }
    const response = await fetch(url, { method: init.method ?? (init.form ? 'POST' : 'GET'), headers, body, redirect: 'manual' });
    for (const setCookie of response.headers.getSetCookie()) await this.jar.setCookie(setCookie, url);
    const location = response.headers.get('location') ?? undefined;
    return {
      status: response.status,
      url,
      location: location ? new URL(location, url).toString() : undefined,
      headers: response.headers,
      body: await response.text(),
    };
  }

  /** Follows redirects until a page is shown or the next hop would leave for `stopAt`. */
  async follow(url: string, stopAt: string, init?: Parameters<UserAgent['request']>[1]): Promise<PageResponse | { stoppedAt: string }> {
    let response = await this.request(url, init);
    for (let hops = 0; hops < 20; hops += 1) {
      if (!response.location || response.status < 300 || response.status >= 400) return response;
      if (response.location.startsWith(stopAt)) return { stoppedAt: response.location };
      response = await this.request(response.location);
    }
    throw new Error('too many redirects');
  }
}

export function hiddenField(html: string, name: string): string {
  const match = new RegExp(`name="${name}" value="([^"]*)"`).exec(html);
  if (!match) throw new Error(`no field ${name} in page`);
  return match[1]!;
}

export function formActions(html: string): string[] {
  return [...html.matchAll(/<form[^>]*action="([^"]+)"/g)].map((m) => m[1]!);
}

export interface SignInOptions {
  email: string;
  password: string;
  /** Register instead of signing in, with this name. */
  registerName?: string;
  consent?: 'allow' | 'deny';
  /** The optional items to tick on the consent page (name="scope"); none when left out. */
  share?: string[];
}

/**
 * Drives an authorization request through the hosted pages as a person would and returns
 * the URL the service receives, plus which pages were shown on the way.
 */
export async function completeAuthorization(
  agent: UserAgent,
  authorizationUrl: string,
  redirectUri: string,
  options: SignInOptions,
): Promise<{ callback: URL; pages: string[] }> {
  const pages: string[] = [];
  let next = await agent.follow(authorizationUrl, redirectUri);
  for (let step = 0; step < 6; step += 1) {
    if ('stoppedAt' in next) return { callback: new URL(next.stoppedAt), pages };
    const page = next;
    const actions = formActions(page.body);
    const origin = new URL(page.url).origin;
    const csrf = () => hiddenField(page.body, '_csrf');
    const login = actions.find((a) => a.endsWith('/login'));
    const consent = actions.find((a) => a.endsWith('/consent'));
    if (login && options.registerName) {
      pages.push('register');
      const registerPage = await agent.request(origin + login.replace(/\/login$/, '/register'));
      const form = {
        _csrf: hiddenField(registerPage.body, '_csrf'),
        email: options.email,
        password: options.password,
        name: options.registerName,
      };
      next = await agent.follow(origin + login.replace(/\/login$/, '/register'), redirectUri, { form });
      options = { ...options, registerName: undefined };
    } else if (login) {
      pages.push('login');
      next = await agent.follow(origin + login, redirectUri, { form: { _csrf: csrf(), email: options.email, password: options.password } });
    } else if (consent) {
      pages.push('consent');
      const target = options.consent === 'deny' ? actions.find((a) => a.endsWith('/abort'))! : consent;
      next = await agent.follow(origin + target, redirectUri, { form: { _csrf: csrf(), scope: options.share ?? [] } });
    } else {
      throw new Error(`unexpected page (status ${page.status}): ${page.body.slice(0, 500)}`);
    }
  }
  throw new Error('authorization did not finish');
}
