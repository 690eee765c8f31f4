import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createTestAccount, createTestClient } from '../helpers/fixtures.js';
import { discoverClient, exchangeCode, startAuthorization } from '../helpers/oidc-client.js';
import { freePort, killAll, serverScript, startInstance, waitUntilReady, type Instance } from '../helpers/processes.js';
import { postForm, signInToAccountPages } from '../helpers/self-service.js';
import { testDatabase } from '../helpers/server.js';
import { completeAuthorization, UserAgent } from '../helpers/user-agent.js';
import type { Database } from '../../src/db/index.js';

/*
 * Performance issue: clients, accounts, tokens, codes and grants are kept in each
 * process's memory, and Postgres's change notices (LISTEN/NOTIFY, migrations/0023 and 0026)
 * drop an entry in every process the moment its row changes. Two real server processes on one
 * database, as deployed.
 */

const METRICS_TOKEN = 'metrics-token-for-the-change-notice-test';
const REDIRECT_URI = 'http://127.0.0.1:9905/cb';
const children: ChildProcess[] = [];
let a: Instance;
let b: Instance;
let db: Database;

beforeAll(async () => {
  if (!existsSync(serverScript)) throw new Error(`${serverScript} is missing: run npm run build (npm test does)`);
  const [portA, portB] = [await freePort(), await freePort()];
  const issuer = `http://127.0.0.1:${portA}`;
  const settings = { issuer, databaseUrl: inject('databaseUrl'), env: { METRICS_TOKEN } };
  a = startInstance(children, 'A', { port: portA, ...settings });
  b = startInstance(children, 'B', { port: portB, ...settings });
  await Promise.all([waitUntilReady(a), waitUntilReady(b)]);
  db = testDatabase();
}, 60_000);
afterAll(async () => {
  killAll(children);
  await db?.close();
});

/**
 * Reads instance B has sent to Postgres so far (its idp_db_query_duration_seconds count of
 * SELECTs; the records written after a response, such as claim releases, are not reads).
 */
async function statementsOfB(): Promise<number> {
  const text = await (await fetch(`${b.origin}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } })).text();
  return [...text.matchAll(/^idp_db_query_duration_seconds_count\{[^}]*operation="select"[^}]*\} (\d+)/gm)].reduce(
    (sum, match) => sum + Number(match[1]),
    0,
  );
}

/** Instance B's userinfo for the token. */
async function userinfoOnB(accessToken: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${b.origin}/me`, { headers: { authorization: `Bearer ${accessToken}` } });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

/** Polls until `check` holds; returns how long it took (ms). */
async function timeUntil(check: () => Promise<boolean>, limitMs = 5000): Promise<number> {
  const started = performance.now();
  while (!(await check())) {
    if (performance.now() - started > limitMs) throw new Error(`not seen within ${limitMs} ms`);
  }
  return performance.now() - started;
}

/** A person signed in to a service through instance A, with the code the service got back (not redeemed). */
async function codeIssuedByA() {
  const account = await createTestAccount(db, { name: 'Before' });
  const registered = await createTestClient(db, async () => undefined, {
    redirectUris: [REDIRECT_URI],
    scopes: ['openid', 'profile'],
  });
  const config = await discoverClient(a.origin, registered.client.clientId, registered.clientSecret);
  const request = await startAuthorization(config, REDIRECT_URI, 'openid profile');
  const { callback } = await completeAuthorization(new UserAgent(), request.url.href, REDIRECT_URI, { ...account, consent: 'allow' });
  return { account, registered, config, request, callback };
}

/** A person signed in to a service through instance A, with the service's access token. */
async function signedIn() {
  const { account, registered, config, request, callback } = await codeIssuedByA();
  const tokens = await exchangeCode(config, callback, request);
  return { account, registered, config, accessToken: tokens.access_token };
}

/** The service redeems its code at one instance's token endpoint, as a load balancer may send it. */
async function redeemAt(instance: Instance, issued: Awaited<ReturnType<typeof codeIssuedByA>>) {
  const response = await fetch(`${instance.origin}/token`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${issued.registered.client.clientId}:${issued.registered.clientSecret}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      code: issued.callback.searchParams.get('code')!,
      redirect_uri: REDIRECT_URI,
      code_verifier: issued.request.verifier,
    }),
  });
  return { status: response.status, body: (await response.json()) as Record<string, string> };
}

describe('in-process caches kept true by change notices', () => {
  it('keep an account, a client, a token and its grant in memory: a repeated userinfo on another instance reads only the session', async () => {
    const { accessToken } = await signedIn();
    expect((await userinfoOnB(accessToken)).body['name']).toBe('Before');
    const before = await statementsOfB();
    for (let i = 0; i < 10; i += 1) expect((await userinfoOnB(accessToken)).status).toBe(200);
    // The access token, its grant, the account and the client are in memory; its session (the
    // token ends with it) is read each time, so that a sign-out applies at once.
    expect((await statementsOfB()) - before).toBe(10);
  });

  it('see a profile changed on one instance at once on the other', async () => {
    const { account, accessToken } = await signedIn();
    expect((await userinfoOnB(accessToken)).body['name']).toBe('Before');
    const agent = new UserAgent();
    const profile = await signInToAccountPages(agent, a.origin, account.email, account.password);
    const saved = await postForm(agent, a.origin, profile, '/account/profile', {
      name: 'After',
      givenName: '',
      familyName: '',
      locale: '',
      zoneinfo: '',
    });
    expect(saved.status).toBe(303);
    const took = await timeUntil(async () => (await userinfoOnB(accessToken)).body['name'] === 'After');
    process.stdout.write(`change seen on the other instance after ${took.toFixed(1)} ms\n`);
  });

  it('refuse a removed service’s token on the other instance at once', async () => {
    const { registered, accessToken } = await signedIn();
    expect((await userinfoOnB(accessToken)).status).toBe(200);
    await db.query('DELETE FROM clients WHERE id = $1', [registered.client.clientId]);
    await timeUntil(async () => (await userinfoOnB(accessToken)).status === 401);
  });

  it('empty the caches when the listening connection is lost, and fill them again once it is back', async () => {
    const { account, accessToken } = await signedIn();
    expect((await userinfoOnB(accessToken)).body['name']).toBe('Before');
    // Every instance's listening connection goes.
    await db.query(
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
       WHERE datname = current_database() AND (query LIKE 'LISTEN idp_changes%' OR query LIKE 'SELECT pg_notify%')`,
    );
    // A change whose notice is missed, however fast the instances listen again (no trigger fires for it).
    await db.transaction(async (tx) => {
      await tx.query('SET LOCAL session_replication_role = replica');
      await tx.query('UPDATE accounts SET name = $2 WHERE id = $1', [account.id, 'Changed while nobody listened']);
    });
    await timeUntil(async () => (await userinfoOnB(accessToken)).body['name'] === 'Changed while nobody listened');
    // Listening again: caching resumes (a repeated userinfo reads only the session), and the next change arrives by notice.
    await timeUntil(async () => {
      await userinfoOnB(accessToken);
      const before = await statementsOfB();
      await userinfoOnB(accessToken);
      return (await statementsOfB()) - before === 1;
    });
    // What was kept before the loss is gone: the change made meanwhile is what the cache holds now.
    expect((await userinfoOnB(accessToken)).body['name']).toBe('Changed while nobody listened');
    await db.query('UPDATE accounts SET name = $2 WHERE id = $1', [account.id, 'Back']);
    await timeUntil(async () => (await userinfoOnB(accessToken)).body['name'] === 'Back');
  });
});

describe('tokens, codes and grants kept in memory, and kept true by change notices', () => {
  it('refuse on the other instance a token revoked on one, within milliseconds', async () => {
    const { config, accessToken } = await signedIn();
    expect((await userinfoOnB(accessToken)).status).toBe(200);
    await oidc.tokenRevocation(config, accessToken, { token_type_hint: 'access_token' });
    const took = await timeUntil(async () => (await userinfoOnB(accessToken)).status === 401);
    process.stdout.write(`revocation seen on the other instance after ${took.toFixed(1)} ms\n`);
  });

  it('refuse on the other instance the tokens of a service disconnected on one', async () => {
    const { account, registered, accessToken } = await signedIn();
    expect((await userinfoOnB(accessToken)).status).toBe(200);
    const agent = new UserAgent();
    const services = await signInToAccountPages(agent, a.origin, account.email, account.password);
    const done = await postForm(agent, a.origin, services, '/account/services/revoke', { clientId: registered.client.clientId });
    expect(done.status).toBe(303);
    await timeUntil(async () => (await userinfoOnB(accessToken)).status === 401);
  });

  it('refuse on the other instance a token whose session ended on one', async () => {
    const { account, accessToken } = await signedIn();
    expect((await userinfoOnB(accessToken)).status).toBe(200);
    // The support tool's door: every session of the account ends, and the tokens bound to them with it.
    const { rows } = await db.query<{ uid: string }>(`SELECT uid FROM oidc_payloads WHERE model = 'Session' AND account_id = $1`, [
      account.id,
    ]);
    expect(rows).toHaveLength(1);
    await db.query(`DELETE FROM oidc_payloads WHERE model = 'Session' AND uid = $1`, [rows[0]!.uid]);
    await timeUntil(async () => (await userinfoOnB(accessToken)).status === 401);
  });

  it('a code redeemed on one instance and replayed on the one that issued it fails and revokes what it gave', async () => {
    const issued = await codeIssuedByA();
    const first = await redeemAt(b, issued);
    expect(first.status).toBe(200);
    expect((await userinfoOnB(first.body['access_token']!)).status).toBe(200);
    // Instance A still holds the code as it issued it, unless the notice of its use came first.
    const replay = await redeemAt(a, issued);
    expect(replay).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
    await timeUntil(async () => (await userinfoOnB(first.body['access_token']!)).status === 401);
  });
});
