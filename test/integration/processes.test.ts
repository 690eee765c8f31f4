import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createTestAccount, createTestClient } from '../helpers/fixtures.js';
import { discoverClient, startAuthorization, exchangeCode } from '../helpers/oidc-client.js';
import { freePort, killAll, serverScript, startInstance, waitUntilReady, type Instance } from '../helpers/processes.js';
import { testDatabase } from '../helpers/server.js';
import { completeAuthorization, formActions, hiddenField, UserAgent } from '../helpers/user-agent.js';
import type { Database } from '../../src/db/index.js';
import type { RegisteredClient } from '../../src/clients/store.js';

/*
 * Two real server processes (the built `node dist/server.js`, as deployed) on one database,
 * behind one issuer as a load balancer would put them. `npm test` builds dist first.
 */

const SHUTDOWN_TIMEOUT_SECONDS = 5;
const REDIRECT_URI = 'http://127.0.0.1:9900/cb';

const children: ChildProcess[] = [];
let a: Instance;
let b: Instance;
let db: Database;
let registered: RegisteredClient;

function startOne(name: string, port: number, issuer: string): Instance {
  return startInstance(children, name, {
    port,
    issuer,
    databaseUrl: inject('databaseUrl'),
    // Low on purpose: the shared-counter test locks an account with failures spread over both.
    env: { LOGIN_MAX_FAILURES_PER_ACCOUNT: '3', SHUTDOWN_TIMEOUT_SECONDS: String(SHUTDOWN_TIMEOUT_SECONDS) },
  });
}

/** Resolves true if a new TCP connection to the port is refused. */
function connectionRefused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.on('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.on('error', (error: NodeJS.ErrnoException) => resolve(error.code === 'ECONNREFUSED'));
  });
}

/** A login page opened on `instance`, with what it takes to post the form to any instance. */
async function loginPage(instance: Instance) {
  const params = new URLSearchParams({
    client_id: registered.client.clientId,
    redirect_uri: REDIRECT_URI,
    response_type: 'code',
    scope: 'openid',
    code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
    code_challenge_method: 'S256',
  });
  const agent = new UserAgent();
  const page = await agent.follow(`${instance.origin}/auth?${params}`, REDIRECT_URI);
  if ('stoppedAt' in page) throw new Error(`unexpected redirect to ${page.stoppedAt}`);
  const action = formActions(page.body).find((x) => x.endsWith('/login'));
  if (!action) throw new Error(`no login form on ${instance.name} (status ${page.status})`);
  const csrf = hiddenField(page.body, '_csrf');
  // Cookies are per host, not per port: the same browser can post to either instance.
  const postTo = (target: Instance, email: string, password: string) =>
    agent.request(target.origin + action, { form: { _csrf: csrf, email, password } });
  return { agent, action, csrf, postTo };
}

beforeAll(async () => {
  if (!existsSync(serverScript)) throw new Error(`${serverScript} is missing: run npm run build (npm test does)`);
  const [portA, portB] = [await freePort(), await freePort()];
  const issuer = `http://127.0.0.1:${portA}`;
  // Started together, as after a deploy: both race to create keys and secrets on first use.
  a = startOne('A', portA, issuer);
  b = startOne('B', portB, issuer);
  await Promise.all([waitUntilReady(a), waitUntilReady(b)]);
  db = testDatabase();
  registered = await createTestClient(db, async () => {}, { redirectUris: [REDIRECT_URI] });
}, 60_000);

afterAll(async () => {
  killAll(children);
  await db?.close();
});

describe('two server processes on one database', () => {
  it('serve the same JWKS and the same issuer', async () => {
    const [jwksA, jwksB] = await Promise.all([
      fetch(`${a.origin}/jwks`).then((r) => r.json()),
      fetch(`${b.origin}/jwks`).then((r) => r.json()),
    ]);
    expect((jwksA as { keys: unknown[] }).keys.length).toBeGreaterThan(0);
    expect(jwksB).toEqual(jwksA);
    const [discoveryA, discoveryB] = await Promise.all([
      fetch(`${a.origin}/.well-known/openid-configuration`).then((r) => r.json() as Promise<{ issuer: string }>),
      fetch(`${b.origin}/.well-known/openid-configuration`).then((r) => r.json() as Promise<{ issuer: string }>),
    ]);
    expect(discoveryA.issuer).toBe(a.origin);
    expect(discoveryB.issuer).toBe(a.origin);
  });

  it('redeem at instance B a code from a sign-in on instance A, and B answers userinfo for it', async () => {
    const account = await createTestAccount(db);
    const config = await discoverClient(a.origin, registered.client.clientId, registered.clientSecret);
    const request = await startAuthorization(config, REDIRECT_URI, 'openid email');
    const { callback, pages } = await completeAuthorization(new UserAgent(), request.url.href, REDIRECT_URI, {
      email: account.email,
      password: account.password,
      consent: 'allow',
    });
    expect(pages).toEqual(['login', 'consent']);
    // Every back-channel call now goes to B.
    const viaB: string[] = [];
    config[oidc.customFetch] = (url, options) => {
      viaB.push(url);
      return fetch(url.replace(a.origin, b.origin), options as RequestInit);
    };
    const tokens = await exchangeCode(config, callback, request);
    expect(tokens.claims()!.iss).toBe(a.origin);
    expect(await oidc.fetchUserInfo(config, tokens.access_token, tokens.claims()!.sub)).toMatchObject({ email: account.email });
    expect(viaB.some((url) => url.endsWith('/token'))).toBe(true);
  });

  it('share the sign-in failure counters: failures spread over A and B lock the account on both', async () => {
    const account = await createTestAccount(db);
    const statuses: number[] = [];
    for (const target of [a, b, a]) {
      const { postTo } = await loginPage(target);
      statuses.push((await postTo(target, account.email, 'wrong-password-1')).status);
    }
    // Neither instance saw three failures itself; together they did.
    expect(statuses).toEqual([401, 401, 401]);
    for (const target of [a, b]) {
      const { postTo } = await loginPage(target);
      const locked = await postTo(target, account.email, account.password);
      expect(locked.status, `instance ${target.name}`).toBe(429);
      expect(Number(locked.headers.get('retry-after')), `instance ${target.name}`).toBeGreaterThan(0);
    }
  });

  it('on SIGTERM, A refuses new connections, finishes the sign-in in flight with its normal answer, and exits 0 in time; B keeps serving', async () => {
    const account = await createTestAccount(db);
    const { agent, action, csrf } = await loginPage(a);
    const cookies = await agent.jar.getCookieString(a.origin + action);
    const body = Buffer.from(new URLSearchParams({ _csrf: csrf, email: account.email, password: account.password }).toString());

    // A browser on a slow uplink: headers and part of the form are sent, the rest is still on its way.
    const socket = connect(a.port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    socket.write(
      [
        `POST ${action} HTTP/1.1`,
        `Host: 127.0.0.1:${a.port}`,
        `Cookie: ${cookies}`,
        'Accept: text/html',
        'Content-Type: application/x-www-form-urlencoded',
        `Content-Length: ${body.length}`,
        'Connection: close',
        '',
        '',
      ].join('\r\n'),
    );
    socket.write(body.subarray(0, 10));
    await new Promise((resolve) => setTimeout(resolve, 300)); // the request is being read by A

    const signalledAt = Date.now();
    a.child.kill('SIGTERM');
    let refused = false;
    for (let i = 0; i < 40 && !refused; i += 1) {
      refused = await connectionRefused(a.port);
      if (!refused) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(refused, 'a new connection to A after SIGTERM is refused').toBe(true);
    expect(a.child.exitCode, 'A waits for the request in flight').toBeNull();

    socket.write(body.subarray(10));
    await closed;
    const response = Buffer.concat(chunks).toString('utf8');
    const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(response)?.[1]);
    // The normal answer to a correct password: redirect back into the authorization.
    expect(status, response.slice(0, 500)).toBe(303);
    expect(response).toMatch(/\r\nlocation: [^\r]*\/auth\//i);

    const { code, signal } = await a.exited;
    const elapsed = Date.now() - signalledAt;
    expect({ code, signal }, a.output.join('')).toEqual({ code: 0, signal: null });
    expect(elapsed).toBeLessThan(SHUTDOWN_TIMEOUT_SECONDS * 1000);
    console.info(`instance A drained and exited 0 in ${elapsed} ms after SIGTERM (timeout ${SHUTDOWN_TIMEOUT_SECONDS} s)`);

    // The other instance is unaffected.
    expect((await fetch(`${b.origin}/readyz`)).status).toBe(200);
  });
});
