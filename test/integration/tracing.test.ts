import type { ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createTestAccount, createTestClient } from '../helpers/fixtures.js';
import { freePort, killAll, startInstance, waitUntilReady } from '../helpers/processes.js';
import { testDatabase } from '../helpers/server.js';
import { formActions, hiddenField, UserAgent } from '../helpers/user-agent.js';

/*
 * OpenTelemetry: a real server process exports its spans by OTLP/HTTP (JSON) to a receiver
 * on 127.0.0.1. One sign-in, started with a W3C traceparent as a service's page would send
 * it, comes back as a tree: the server spans continue that trace, and statements and argon2
 * hang below them. No span carries the person's email or password.
 */

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes?: { key: string; value: Record<string, unknown> }[];
}

const received: OtlpSpan[] = [];
let receiver: Server;
let endpoint = '';
const children: ChildProcess[] = [];
const db = testDatabase();

beforeAll(async () => {
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      if (req.url === '/v1/traces' && req.headers['content-type']?.includes('json')) {
        const data = JSON.parse(body) as { resourceSpans: { scopeSpans: { spans: OtlpSpan[] }[] }[] };
        for (const resource of data.resourceSpans) for (const scope of resource.scopeSpans) received.push(...scope.spans);
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
});
afterAll(async () => {
  killAll(children);
  await new Promise<void>((resolve) => receiver.close(() => resolve()));
  await db.close();
});

describe('OpenTelemetry traces', { timeout: 60_000 }, () => {
  it('export one sign-in as a tree continuing the caller’s traceparent, with no personal data', async () => {
    const port = await freePort();
    const issuer = `http://127.0.0.1:${port}`;
    const instance = startInstance(children, 'traced', {
      port,
      issuer,
      databaseUrl: inject('databaseUrl'),
      env: { OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_SERVICE_NAME: 'idp-under-test', LOG_LEVEL: 'info', LOG_FORMAT: 'json' },
    });
    await waitUntilReady(instance);
    const account = await createTestAccount(db);
    const registered = await createTestClient(db, async () => undefined, { redirectUris: ['http://127.0.0.1:9930/cb'] });
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const callerSpan = '00f067aa0ba902b7';
    const agent = new UserAgent({ headers: { traceparent: `00-${traceId}-${callerSpan}-01` } });
    const params = new URLSearchParams({
      client_id: registered.client.clientId,
      redirect_uri: 'http://127.0.0.1:9930/cb',
      response_type: 'code',
      scope: 'openid',
      code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
      code_challenge_method: 'S256',
    });
    const page = await agent.follow(`${issuer}/auth?${params}`, 'http://127.0.0.1:9930/cb');
    if ('stoppedAt' in page) throw new Error('expected the sign-in page');
    const login = formActions(page.body).find((action) => action.endsWith('/login'))!;
    await agent.request(`${issuer}${login}`, {
      form: { _csrf: hiddenField(page.body, '_csrf'), email: account.email, password: account.password },
    });

    instance.child.kill('SIGTERM'); // flushes the batch on the way out
    expect(await instance.exited).toEqual({ code: 0, signal: null });

    const ours = received.filter((span) => span.traceId === traceId);
    const servers = ours.filter((span) => span.kind === 2); // SERVER
    expect(servers.map((span) => span.name)).toEqual(
      expect.arrayContaining(['GET /auth', 'GET /interaction/:uid', 'POST /interaction/:uid/login']),
    );
    // Each request continues the caller's span; the work of a request hangs below its server span.
    for (const span of servers) expect(span.parentSpanId, span.name).toBe(callerSpan);
    const loginSpan = servers.find((span) => span.name === 'POST /interaction/:uid/login')!;
    const below = (parent: OtlpSpan): OtlpSpan[] =>
      ours.filter((span) => span.parentSpanId === parent.spanId).flatMap((child) => [child, ...below(child)]);
    const underLogin = below(loginSpan);
    expect(underLogin.some((span) => span.name === 'argon2')).toBe(true);
    expect(underLogin.some((span) => span.name.startsWith('db ') && span.kind === 3)).toBe(true); // CLIENT
    // Every request's log line names its trace.
    const requestLines = instance.output
      .join('')
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as { msg?: string; trace_id?: string; route?: string })
      .filter((line) => line.msg === 'request' && line.route !== '/readyz');
    expect(requestLines.length).toBeGreaterThanOrEqual(3);
    for (const line of requestLines) expect(line.trace_id, line.route).toBe(traceId);
    const everything = JSON.stringify(received);
    expect(everything).not.toContain(account.email);
    expect(everything).not.toContain(account.password);
  });
});
