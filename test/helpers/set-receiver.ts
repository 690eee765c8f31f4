import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify, type JWTPayload } from 'jose';
import { eventTypes, type EventName } from '../../src/events/event-types.js';
import { waitFor } from './listener.js';

/** A Security Event Token as a receiver checked it. */
export interface ReceivedEvent {
  token: string;
  claims: JWTPayload & { txn: string; sub_id: Record<string, unknown>; events: Record<string, Record<string, unknown>> };
  /** The one event URI the SET carries, and its payload. */
  uri: string;
  payload: Record<string, unknown>;
}

/**
 * A service's push endpoint (RFC 8935) on 127.0.0.1 that verifies every Security Event Token
 * as a careful receiver would: signature against the issuer's JWKS, `typ: secevent+jwt`,
 * `iss`, `aud` (its own client id), `iat`, `jti`, `txn`, one event. What fails is kept in
 * `rejected` (and answered 400, as RFC 8935 §2.3 asks); what passes in `events` (202).
 */
export class SetReceiver {
  readonly events: ReceivedEvent[] = [];
  readonly rejected: { token: string; reason: string }[] = [];
  private server: Server | undefined;
  port = 0;
  audience = '';

  /** status: what the receiver answers to a valid SET (500 to play a failing service). */
  constructor(
    private readonly issuer: string,
    private readonly status = 202,
  ) {}

  async start(): Promise<this> {
    const keys = createRemoteJWKSet(new URL(`${this.issuer}/jwks`));
    this.server = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        void this.check(keys, req.headers['content-type'], body).then((ok) => {
          res.statusCode = ok ? this.status : 400;
          res.setHeader('content-type', 'application/json');
          res.end(ok ? '' : JSON.stringify({ err: 'invalid_request' }));
        });
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  private async check(keys: ReturnType<typeof createRemoteJWKSet>, contentType: string | undefined, token: string): Promise<boolean> {
    try {
      if (contentType !== 'application/secevent+jwt') throw new Error(`content-type ${contentType}`);
      if (decodeProtectedHeader(token).typ !== 'secevent+jwt') throw new Error('typ is not secevent+jwt');
      const { payload } = await jwtVerify(token, keys, {
        issuer: this.issuer,
        audience: this.audience,
        typ: 'secevent+jwt',
        requiredClaims: ['iat', 'jti', 'txn', 'events', 'sub_id'],
      });
      const events = payload['events'] as Record<string, Record<string, unknown>>;
      const uris = Object.keys(events);
      if (uris.length !== 1) throw new Error('not exactly one event');
      // RFC 8417 §2.2: a SET is not an ID token or access token and must not look like one.
      if (payload.sub !== undefined || payload.exp !== undefined) throw new Error('sub or exp present');
      this.events.push({ token, claims: payload as ReceivedEvent['claims'], uri: uris[0]!, payload: events[uris[0]!]! });
      return true;
    } catch (error) {
      this.rejected.push({ token, reason: (error as Error).message });
      return false;
    }
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}/events`;
  }

  /** The verified events of one type, in arrival order. */
  of(name: EventName): ReceivedEvent[] {
    return this.events.filter((event) => event.uri === eventTypes[name]);
  }

  /** Waits for the count-th (default: first) verified event of this type. */
  async next(name: EventName, count = 1): Promise<ReceivedEvent> {
    return waitFor(() => this.of(name)[count - 1]);
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.server?.close(() => resolve()) ?? resolve());
  }
}
