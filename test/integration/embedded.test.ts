import { execFile, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { errors } from 'oidc-provider';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostgresDatabase, type Database } from '../../src/db/index.js';
import { openEmbeddedPostgres, type EmbeddedPostgres } from '../../src/db/embedded.js';
import { migrate } from '../../src/db/migrate.js';
import { createLogger } from '../../src/logger.js';
import { cookieKeySealer } from '../../src/oidc/sealing.js';
import { createAdapterFactory } from '../../src/oidc/adapter.js';
import { createTestAccount, createTestClient } from '../helpers/fixtures.js';
import { discoverClient, startAuthorization, exchangeCode } from '../helpers/oidc-client.js';
import { startTestServer, testDatabase } from '../helpers/server.js';
import { completeAuthorization, UserAgent } from '../helpers/user-agent.js';

const execFileAsync = promisify(execFile);
const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const logger = createLogger({ logLevel: 'silent' });
const testSealer = cookieKeySealer(() => ['a cookie key of at least thirty-two characters']);

let dataDir: string;
let embedded: EmbeddedPostgres;
let db: Database;
let closed = false;
/** Accounts created in the embedded database, checked again after a restart. */
const accountIds: string[] = [];

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'idp-embedded-test-'));
  embedded = await openEmbeddedPostgres(dataDir, logger);
  db = createPostgresDatabase(embedded.url, { poolMax: 8, logger, onClose: embedded.close, preparedStatements: false });
});

afterAll(async () => {
  if (db && !closed) await db.close();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

function uniqueId(prefix: string): string {
  return `${prefix}-${randomBytes(9).toString('hex')}`;
}

async function readServerState(): Promise<{ pid: number; port: number }> {
  return JSON.parse(await readFile(join(dataDir, 'server.json'), 'utf8')) as { pid: number; port: number };
}

/** The child imports the compiled code: fail clearly when dist/ is missing or older than src/. */
async function assertDistIsBuilt(modules: string[]): Promise<void> {
  for (const module of modules) {
    const compiled = join(repoRoot, 'dist', `${module}.js`);
    const source = join(repoRoot, 'src', `${module}.ts`);
    if (!existsSync(compiled) || (await stat(compiled)).mtimeMs < (await stat(source)).mtimeMs) {
      throw new Error(`dist/${module}.js is missing or older than src/${module}.ts: run \`npm run build\` first`);
    }
  }
}

describe('embedded Postgres (PGlite served on loopback)', () => {
  it('starts an owner in a fresh directory that records its pid and port, and applies every migration once', async () => {
    const state = await readServerState();
    expect(state.pid).toBe(process.pid);
    expect(embedded.url).toBe(`postgres://postgres@127.0.0.1:${state.port}/postgres`);
    expect((await readFile(join(dataDir, 'owner.lock'), 'utf8')).trim()).toBe(String(process.pid));

    const first = await migrate(db, logger);
    expect(first.applied).toContain('0001_init');
    expect(first.alreadyApplied).toEqual([]);
    const second = await migrate(db, logger);
    expect(second.applied).toEqual([]);
    expect(second.alreadyApplied).toEqual(first.applied);
    expect(await db.isReachable()).toBe(true);
  });

  it('runs the adapter: upsert/find, findByUid, consume and a rejected replay that revokes the grant', async () => {
    const Adapter = createAdapterFactory(db, testSealer);
    const grantId = uniqueId('grant');
    const code = uniqueId('code');
    const token = uniqueId('at');
    const sessionId = uniqueId('session');
    const uid = uniqueId('uid');
    await new Adapter('AuthorizationCode').upsert(code, { jti: code, grantId, clientId: 'c' }, 60);
    await new Adapter('AccessToken').upsert(token, { jti: token, grantId }, 600);
    await new Adapter('Session').upsert(sessionId, { jti: sessionId, uid }, 600);

    expect(await new Adapter('AuthorizationCode').find(code)).toEqual({ jti: code, grantId, clientId: 'c' });
    expect(await new Adapter('Session').findByUid(uid)).toEqual({ uid });

    await new Adapter('AuthorizationCode').consume(code);
    expect((await new Adapter('AuthorizationCode').find(code))?.consumed).toEqual(expect.any(Number));
    await expect(new Adapter('AuthorizationCode').consume(code)).rejects.toBeInstanceOf(errors.InvalidGrant);
    expect(await new Adapter('AccessToken').find(token)).toBeUndefined();
    expect(await new Adapter('Session').findByUid(uid)).toEqual({ uid });
  });

  it('lets exactly one of 10 concurrent consume() calls on one id win; the other 9 get InvalidGrant', async () => {
    const Adapter = createAdapterFactory(db, testSealer);
    const id = uniqueId('code');
    await new Adapter('AuthorizationCode').upsert(id, { jti: id, grantId: uniqueId('grant') }, 60);

    const results = await Promise.allSettled(Array.from({ length: 10 }, () => new Adapter('AuthorizationCode').consume(id)));

    expect(results.filter((result) => result.status === 'fulfilled')).toHaveLength(1);
    const rejected = results.filter((result): result is PromiseRejectedResult => result.status === 'rejected');
    expect(rejected).toHaveLength(9);
    for (const { reason } of rejected) expect(reason).toBeInstanceOf(errors.InvalidGrant);
  });

  it('lets a second process open the same directory as a client of the running owner and query it', async () => {
    await assertDistIsBuilt(['db/embedded', 'db/index', 'logger', 'errors']);
    accountIds.push((await createTestAccount(db)).id);
    const { rows } = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM accounts');
    const expected = rows[0]!.n;
    expect(expected).toBeGreaterThan(0);

    const dist = (module: string) => JSON.stringify(new URL(`../../dist/${module}.js`, import.meta.url).href);
    const script = `
      import { openEmbeddedPostgres } from ${dist('db/embedded')};
      import { createPostgresDatabase } from ${dist('db/index')};
      import { createLogger } from ${dist('logger')};
      const logger = createLogger({ logLevel: 'silent' });
      const embedded = await openEmbeddedPostgres(process.env.IDP_TEST_EMBEDDED_DIR, logger);
      const db = createPostgresDatabase(embedded.url, { poolMax: 1, logger, onClose: embedded.close, preparedStatements: false });
      const { rows } = await db.query('SELECT count(*)::int AS n FROM accounts');
      await db.close();
      process.stdout.write(JSON.stringify({ url: embedded.url, count: rows[0].n }));
    `;
    const child = await execFileAsync(process.execPath, ['--input-type=module', '-e', script], {
      cwd: repoRoot,
      env: { ...process.env, IDP_TEST_EMBEDDED_DIR: dataDir },
      // Killed before the test's own 30 s timeout, so a hung child never outlives the test.
      timeout: 25_000,
    });

    const output = JSON.parse(child.stdout) as { url: string; count: number };
    expect(output).toEqual({ url: embedded.url, count: expected });
    // The client's close left the owner alone: still the owner, still serving.
    expect((await readServerState()).pid).toBe(process.pid);
    expect(await db.isReachable()).toBe(true);
  });

  it('serves a full authorization code + PKCE login through the app, storing everything in the embedded database', async () => {
    // As src/server.ts does: migrate, then build the app on the same database.
    await migrate(db, logger);
    const server = await startTestServer({ db });
    const shared = testDatabase();
    try {
      expect(server.db).toBe(db);
      const account = await createTestAccount(db);
      accountIds.push(account.id);
      const { client, clientSecret } = await createTestClient(db, server.validator);
      const config = await discoverClient(server.issuer, client.clientId, clientSecret);
      const redirectUri = client.redirectUris[0]!;
      const request = await startAuthorization(config, redirectUri, 'openid email');

      const { callback, pages } = await completeAuthorization(new UserAgent(), request.url.href, redirectUri, {
        email: account.email,
        password: account.password,
        consent: 'allow',
      });
      expect(pages).toEqual(['login', 'consent']);
      const tokens = await exchangeCode(config, callback, request);
      const claims = tokens.claims()!;
      expect(claims.iss).toBe(server.issuer);
      expect(claims.aud).toBe(client.clientId);
      expect(await oidc.fetchUserInfo(config, tokens.access_token, claims.sub)).toEqual({
        sub: claims.sub,
        email: account.email,
        email_verified: true,
      });

      // The client, the account and the protocol rows live in the embedded database, not the run's shared one.
      const stored = await db.query<{ model: string }>('SELECT model FROM oidc_payloads WHERE client_id = $1', [client.clientId]);
      expect(stored.rows.map((row) => row.model)).toEqual(expect.arrayContaining(['AuthorizationCode', 'AccessToken', 'Grant']));
      expect((await shared.query('SELECT 1 FROM clients WHERE id = $1', [client.clientId])).rowCount).toBe(0);
      expect((await shared.query('SELECT 1 FROM accounts WHERE id = $1', [account.id])).rowCount).toBe(0);

      // Replaying the code is refused (the adapter's consume on PGlite).
      await expect(
        oidc.authorizationCodeGrant(config, callback, { pkceCodeVerifier: request.verifier, expectedState: request.state }),
      ).rejects.toMatchObject({ error: 'invalid_grant' });
      // ...and revokes the grant, so the access token issued from it no longer works.
      await expect(oidc.fetchUserInfo(config, tokens.access_token, claims.sub)).rejects.toMatchObject({ status: 401 });
    } finally {
      await shared.close();
      await server.close();
    }
  });

  it('closing the owner stops the server and removes server.json and owner.lock', async () => {
    const { port } = await readServerState();
    closed = true;
    await db.close();

    expect(existsSync(join(dataDir, 'server.json'))).toBe(false);
    expect(existsSync(join(dataDir, 'owner.lock'))).toBe(false);
    const probe = createPostgresDatabase(`postgres://postgres@127.0.0.1:${port}/postgres`, { poolMax: 1, logger });
    try {
      expect(await probe.isReachable()).toBe(false);
    } finally {
      await probe.close();
    }
  });

  it('reopening the directory after an unclean shutdown takes over the lock of the dead owner and finds the data still there', async () => {
    expect(closed).toBe(true);
    // What a SIGKILLed owner leaves behind: its lock and server.json, naming a pid that is gone.
    const deadPid = spawnSync(process.execPath, ['-e', '']).pid!;
    await writeFile(join(dataDir, 'owner.lock'), String(deadPid));
    await writeFile(join(dataDir, 'server.json'), JSON.stringify({ pid: deadPid, port: 1 }));

    const reopened = await openEmbeddedPostgres(dataDir, logger);
    const again = createPostgresDatabase(reopened.url, { poolMax: 2, logger, onClose: reopened.close, preparedStatements: false });
    try {
      expect(await readServerState()).toMatchObject({ pid: process.pid });
      expect((await readFile(join(dataDir, 'owner.lock'), 'utf8')).trim()).toBe(String(process.pid));
      const migrations = await again.query<{ version: string }>('SELECT version FROM schema_migrations');
      expect(migrations.rows.map((row) => row.version)).toContain('0001_init');
      const { rows } = await again.query<{ id: string }>('SELECT id FROM accounts WHERE id = ANY($1::text[])', [accountIds]);
      expect(rows.map((row) => row.id).sort()).toEqual([...accountIds].sort());
      expect(accountIds).toHaveLength(2);
    } finally {
      await again.close();
    }
  });
});
