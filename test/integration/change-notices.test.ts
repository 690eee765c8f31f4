import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createTestAccount, createTestClient } from '../helpers/fixtures.js';
import { discoverClient, exchangeCode, startAuthorization } from '../helpers/oidc-client.js';
import { freePort, killAll, serverScript, startInstance, waitUntilReady, type Instance } from '../helpers/processes.js';
import { postForm, signInToAccountPages } from '../helpers/self-service.js';
import { testDatabase } from '../helpers/server.js';
import { completeAuthorization, UserAgent } from '../helpers/user-agent.js';
import type { Database } from '../../src/db/index.js';

/*
 * Performance issue: clients and accounts are kept in each process's memory, and Postgres's
 * change notices (LISTEN/NOTIFY, migrations/0023) drop an entry in every process the moment
 * its row changes. Two real server processes on one database, as deployed.
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

/** A person signed in to a service through instance A, with the service's access token. */
async function signedIn() {
  const account = await createTestAccount(db, { name: 'Before' });
  const registered = await createTestClient(db, async () => undefined, {
    redirectUris: [REDIRECT_URI],
    scopes: ['openid', 'profile'],
  });
  const config = await discoverClient(a.origin, registered.client.clientId, registered.clientSecret);
  const request = await startAuthorization(config, REDIRECT_URI, 'openid profile');
  const { callback } = await completeAuthorization(new UserAgent(), request.url.href, REDIRECT_URI, { ...account, consent: 'allow' });
  const tokens = await exchangeCode(config, callback, request);
  return { account, registered, accessToken: tokens.access_token };
}

describe('in-process caches kept true by change notices', () => {
  it('keep an account and a client in memory: a repeated userinfo on another instance sends fewer statements', async () => {
    const { accessToken } = await signedIn();
    expect((await userinfoOnB(accessToken)).body['name']).toBe('Before');
    const before = await statementsOfB();
    for (let i = 0; i < 10; i += 1) expect((await userinfoOnB(accessToken)).status).toBe(200);
    // The access token, its session (it ends with it) and the grant are read each time, so that
    // revocation and sign-out apply at once; the account and the client are not.
    expect((await statementsOfB()) - before).toBe(30);
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
    // Listening again: caching resumes (a repeated userinfo costs three statements), and the next change arrives by notice.
    await timeUntil(async () => {
      await userinfoOnB(accessToken);
      const before = await statementsOfB();
      await userinfoOnB(accessToken);
      return (await statementsOfB()) - before === 3;
    });
    // What was kept before the loss is gone: the change made meanwhile is what the cache holds now.
    expect((await userinfoOnB(accessToken)).body['name']).toBe('Changed while nobody listened');
    await db.query('UPDATE accounts SET name = $2 WHERE id = $1', [account.id, 'Back']);
    await timeUntil(async () => (await userinfoOnB(accessToken)).body['name'] === 'Back');
  });
});
