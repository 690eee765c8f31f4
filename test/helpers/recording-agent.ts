import { request as httpRequest } from 'node:http';
import { UserAgent, type PageResponse } from './user-agent.js';

/** How to reach a server whose public URL is not where it listens: a TLS-terminating proxy in front of it. */
export interface ProxyTransport {
  /** Where the server really listens (plain HTTP on 127.0.0.1). */
  port: number;
}

/**
 * A UserAgent that keeps every response it received (to check headers and cookies on every
 * page of a flow) and can play the browser behind a TLS-terminating proxy: it addresses the
 * public https URL (cookies are stored and sent for it, Secure ones included) while the bytes
 * go to 127.0.0.1:<port> with the Host, X-Forwarded-Host and X-Forwarded-Proto the proxy would set.
 */
export class RecordingAgent extends UserAgent {
  readonly responses: PageResponse[] = [];

  constructor(private readonly transport?: ProxyTransport) {
    super();
  }

  override async request(url: string, init: Parameters<UserAgent['request']>[1] = {}): Promise<PageResponse> {
    const response = this.transport ? await this.viaProxy(this.transport, url, init) : await super.request(url, init);
    this.responses.push(response);
    return response;
  }

  private async viaProxy(transport: ProxyTransport, url: string, init: Parameters<UserAgent['request']>[1] = {}): Promise<PageResponse> {
    const target = new URL(url);
    const headers: Record<string, string> = {
      ...init.headers,
      accept: 'text/html',
      host: target.host,
      'x-forwarded-host': target.host,
      'x-forwarded-proto': target.protocol.replace(':', ''),
    };
    const cookie = await this.jar.getCookieString(url);
    if (cookie) headers['cookie'] = cookie;
    let body: string | undefined;
    if (init.form) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      body = new URLSearchParams(init.form).toString();
      headers['content-length'] = String(Buffer.byteLength(body));
    }
    const method = init.method ?? (init.form ? 'POST' : 'GET');
    const { status, rawHeaders, text } = await new Promise<{ status: number; rawHeaders: string[]; text: string }>((resolve, reject) => {
      const req = httpRequest(
        { host: '127.0.0.1', port: transport.port, method, path: target.pathname + target.search, headers },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () =>
            resolve({ status: res.statusCode!, rawHeaders: res.rawHeaders, text: Buffer.concat(chunks).toString('utf8') }),
          );
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(body);
    });
    const responseHeaders = new Headers();
    for (let i = 0; i < rawHeaders.length; i += 2) responseHeaders.append(rawHeaders[i]!, rawHeaders[i + 1]!);
    for (const setCookie of responseHeaders.getSetCookie()) await this.jar.setCookie(setCookie, url);
    const location = responseHeaders.get('location') ?? undefined;
    return { status, url, location: location ? new URL(location, url).toString() : undefined, headers: responseHeaders, body: text };
  }
}
