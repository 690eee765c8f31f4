import { execFile } from 'node:child_process';
import { createPublicKey, generateKeyPairSync, randomBytes, verify, type JsonWebKey } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import type { Database } from '../../src/db/index.js';
import { ConfigError } from '../../src/errors.js';
import { decryptJson, envelopeSchema, keyEncryptionKey } from '../../src/security/key-encryption.js';
import { loadSigningKeys } from '../../src/oidc/keys.js';
import { loadServerSecrets, pruneCookieKeys } from '../../src/oidc/secrets.js';
import { createTestAccount, createTestClient } from '../helpers/fixtures.js';
import { discoverClient, startAuthorization, exchangeCode } from '../helpers/oidc-client.js';
import { createScratchDatabase, type ScratchDatabase } from '../helpers/scratch-database.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { completeAuthorization, UserAgent } from '../helpers/user-agent.js';

/**
 * Rotation changes which kid signs for every user of a database, and the run's database is
 * shared by files running in parallel: every test here works on a database of its own.
 */

const execFileAsync = promisify(execFile);
const bin = fileURLToPath(new URL('../../dist/cli/index.js', import.meta.url));

/** The built bin (`npm run build`), as an operator runs it, with a minimal environment. */
async function idp<T>(args: string[], env: Record<string, string>): Promise<T> {
  const { stdout, stderr } = await execFileAsync(process.execPath, [bin, ...args, '--json'], {
    env: { PATH: process.env['PATH'] ?? '', LOG_LEVEL: 'warn', ...env },
    timeout: 20_000,
  });
  expect(stderr).toBe('');
  return JSON.parse(stdout) as T;
}

async function idpFailure(args: string[], env: Record<string, string>): Promise<{ code: number; stderr: string }> {
  try {
    await execFileAsync(process.execPath, [bin, ...args], { env: { PATH: process.env['PATH'] ?? '', ...env }, timeout: 20_000 });
  } catch (error) {
    const failure = error as { code: number; stderr: string };
    return { code: failure.code, stderr: failure.stderr };
  }
  throw new Error(`idp ${args.join(' ')} succeeded`);
}

interface KeyJson {
  kid: string;
  alg: string;
  status: string;
  activatesAt: string;
  retiresAt: string | null;
  retiredAt: string | null;
  kek: string | null;
}

interface RotationJson {
  activatesAt: string;
  created: { kid: string; alg: string }[];
  retiring: { kid: string; alg: string; retiresAt: string; retiredAt: string }[];
  deleted: string[];
}

const decodeSegment = (segment: string) => JSON.parse(Buffer.from(segment, 'base64url').toString('utf8')) as Record<string, unknown>;
const kidOf = (jwt: string) => decodeSegment(jwt.split('.')[0]!)['kid'] as string;

async function publishedJwks(server: TestServer): Promise<JsonWebKey[]> {
  const response = await fetch(`${server.issuer}/jwks`);
  expect(response.status).toBe(200);
  return ((await response.json()) as { keys: JsonWebKey[] }).keys;
}

/** Verifies a JWS the way a service does: by its kid, against a published JWKS. */
function verifiesAgainst(jwt: string, jwks: JsonWebKey[]): boolean {
  const [header, payload, signature] = jwt.split('.') as [string, string, string];
  const { kid, alg } = decodeSegment(header);
  const jwk = jwks.find((key) => key.kid === kid);
  if (!jwk) return false;
  const key = createPublicKey({ key: jwk, format: 'jwk' });
  const data = Buffer.from(`${header}.${payload}`);
  const sig = Buffer.from(signature, 'base64url');
  return alg === 'ES256' ? verify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, sig) : verify('sha256', data, key, sig);
}

/** Ages every key by `seconds`, as if that much time had passed since they were written. */
async function age(db: Database, seconds: number): Promise<void> {
  await db.query(
    `UPDATE signing_keys SET created_at = created_at - make_interval(secs => $1), activates_at = activates_at - make_interval(secs => $1),
       retires_at = retires_at - make_interval(secs => $1), retired_at = retired_at - make_interval(secs => $1)`,
    [seconds],
  );
}

describe('signing key rotation', { timeout: 120_000 }, () => {
  const kek = randomBytes(32).toString('base64');
  const kekId = keyEncryptionKey(Buffer.from(kek, 'base64')).id;
  let scratch: ScratchDatabase;
  let env: Record<string, string>;
  const servers: TestServer[] = [];
  let person: { email: string; password: string };
  let client: { clientId: string; clientSecret: string; redirectUri: string };

  beforeAll(async () => {
    scratch = await createScratchDatabase('idp_keys');
    env = { DATABASE_URL: scratch.url, KEY_ENCRYPTION_KEY: kek };
  });
  afterAll(async () => {
    for (const server of servers) await server.close();
    await scratch?.drop();
  });

  /** A restart: a new instance reads the keys as they are now. */
  async function startInstance(): Promise<TestServer> {
    const server = await startTestServer({ env });
    servers.push(server);
    if (!person) {
      person = await createTestAccount(server.db);
      const registered = await createTestClient(server.db, server.validator);
      client = {
        clientId: registered.client.clientId,
        clientSecret: registered.clientSecret!,
        redirectUri: registered.client.redirectUris[0]!,
      };
    }
    return server;
  }

  async function idTokenFrom(server: TestServer): Promise<string> {
    const config = await discoverClient(server.issuer, client.clientId, client.clientSecret);
    const request = await startAuthorization(config, client.redirectUri, 'openid');
    const { callback } = await completeAuthorization(new UserAgent(), request.url.href, client.redirectUri, {
      ...person,
      consent: 'allow',
    });
    const tokens = await exchangeCode(config, callback, request);
    return tokens.id_token!;
  }

  const rsKid = (keys: { kid: string; alg: string }[]) => keys.find((key) => key.alg === 'RS256')!.kid;
  let originalKid: string;
  let originalToken: string;
  let firstRotation: RotationJson;

  it('publishes rotated-in keys at once but keeps signing ID tokens with the previous key until they activate', async () => {
    const first = await startInstance();
    const original = await idp<KeyJson[]>(['keys', 'list'], env);
    expect(original.map((key) => [key.alg, key.status]).sort()).toEqual([
      ['ES256', 'active'],
      ['RS256', 'active'],
    ]);
    originalKid = rsKid(original);
    originalToken = await idTokenFrom(first);
    expect(kidOf(originalToken)).toBe(originalKid);

    const before = Date.now();
    firstRotation = await idp<RotationJson>(['keys', 'rotate'], env);
    expect(firstRotation.created.map((key) => key.alg).sort()).toEqual(['ES256', 'RS256']);
    // KEY_ACTIVATION_DELAY_SECONDS defaults to an hour.
    expect(Date.parse(firstRotation.activatesAt) - before).toBeGreaterThan(3590_000);
    expect(firstRotation.retiring.map((key) => key.kid).sort()).toEqual(original.map((key) => key.kid).sort());
    for (const key of firstRotation.retiring) {
      expect(key.retiresAt).toBe(firstRotation.activatesAt);
      // Published for the longest of the ID token, access token and session lifetimes (14 days by default).
      expect(Date.parse(key.retiredAt) - Date.parse(key.retiresAt)).toBe(14 * 24 * 3600 * 1000);
    }

    const listed = await idp<KeyJson[]>(['keys', 'list'], env);
    const statusOf = (kid: string) => listed.find((key) => key.kid === kid)?.status;
    for (const key of original) expect(statusOf(key.kid)).toBe('active');
    for (const key of firstRotation.created) expect(statusOf(key.kid)).toBe('pending');

    const restarted = await startInstance();
    const jwks = await publishedJwks(restarted);
    expect(jwks.map((key) => key.kid).sort()).toEqual([...original, ...firstRotation.created].map((key) => key.kid).sort());
    for (const key of jwks) expect(key).not.toHaveProperty('d');
    expect(kidOf(await idTokenFrom(restarted))).toBe(originalKid);
  });

  it('signs with the new key once its activation time has passed, and tokens of the previous key still verify', async () => {
    await age(scratch.db, 3601);
    const listed = await idp<KeyJson[]>(['keys', 'list'], env);
    const statusOf = (kid: string) => listed.find((key) => key.kid === kid)?.status;
    for (const key of firstRotation.created) expect(statusOf(key.kid)).toBe('active');
    for (const key of firstRotation.retiring) expect(statusOf(key.kid)).toBe('retiring');

    const restarted = await startInstance();
    const token = await idTokenFrom(restarted);
    expect(kidOf(token)).toBe(rsKid(firstRotation.created));
    const jwks = await publishedJwks(restarted);
    expect(verifiesAgainst(token, jwks)).toBe(true);
    expect(verifiesAgainst(originalToken, jwks)).toBe(true);
  });

  it('with --activate-immediately signs new tokens with the new kid at once; tokens of every earlier key still verify', async () => {
    const previousToken = await idTokenFrom(servers.at(-1)!);
    const rotation = await idp<RotationJson>(['keys', 'rotate', '--activate-immediately'], env);
    expect(Math.abs(Date.parse(rotation.activatesAt) - Date.now())).toBeLessThan(30_000);
    expect(rotation.retiring.map((key) => key.kid).sort()).toEqual(firstRotation.created.map((key) => key.kid).sort());

    const restarted = await startInstance();
    const token = await idTokenFrom(restarted);
    const newKid = rsKid(rotation.created);
    expect(kidOf(token)).toBe(newKid);
    expect(newKid).not.toBe(kidOf(previousToken));

    const jwks = await publishedJwks(restarted);
    expect(jwks).toHaveLength(6);
    for (const jwt of [token, previousToken, originalToken]) expect(verifiesAgainst(jwt, jwks)).toBe(true);
    // A signature by a key that is not published does not verify: the check above means something.
    expect(
      verifiesAgainst(
        token,
        jwks.filter((key) => key.kid !== newKid),
      ),
    ).toBe(false);

    const listed = await idp<KeyJson[]>(['keys', 'list'], env);
    expect(
      listed
        .filter((key) => key.status === 'active')
        .map((key) => key.kid)
        .sort(),
    ).toEqual(rotation.created.map((key) => key.kid).sort());
  });

  it('stores no private key material in clear when KEY_ENCRYPTION_KEY is set', async () => {
    const { rows } = await scratch.db.query<{ kid: string; private_jwk: unknown; private_jwk_envelope: unknown; row: string }>(
      'SELECT kid, private_jwk, private_jwk_envelope, signing_keys::text AS row FROM signing_keys',
    );
    expect(rows).toHaveLength(6);
    const kek = keyEncryptionKey(Buffer.from(env['KEY_ENCRYPTION_KEY']!, 'base64'));
    for (const row of rows) {
      expect(row.private_jwk).toBeNull();
      const envelope = envelopeSchema.parse(row.private_jwk_envelope);
      expect(envelope.kek).toBe(kekId);
      const jwk = decryptJson(envelope, row.kid, [kek]) as JsonWebKey;
      expect(jwk.d).toEqual(expect.any(String));
      expect(row.row).not.toContain(jwk.d);
      expect(row.row).not.toContain('"d"');
    }
    const listed = await idp<KeyJson[]>(['keys', 'list'], env);
    for (const key of listed) expect(key.kek).toBe(kekId);
  });

  it('with --compromised withdraws every earlier key from the JWKS as the new keys start signing, and says so', async () => {
    const previousToken = await idTokenFrom(servers.at(-1)!);
    const before = (await publishedJwks(servers.at(-1)!)).map((key) => key.kid);
    const { stdout } = await execFileAsync(process.execPath, [bin, 'keys', 'rotate', '--compromised'], {
      env: { PATH: process.env['PATH'] ?? '', LOG_LEVEL: 'warn', ...env },
      timeout: 20_000,
    });
    expect(stdout).toMatch(/withdrawn from the JWKS now; every token it signed stops verifying/);

    const restarted = await startInstance();
    const jwks = await publishedJwks(restarted);
    // Only the two new keys: none of the earlier ones, not even for verification (their rows are gone).
    expect(jwks).toHaveLength(2);
    expect((await scratch.db.query('SELECT kid FROM signing_keys')).rowCount).toBe(2);
    for (const kid of before) expect(jwks.map((key) => key.kid)).not.toContain(kid);
    expect(verifiesAgainst(previousToken, jwks)).toBe(false);
    expect(verifiesAgainst(originalToken, jwks)).toBe(false);
    const token = await idTokenFrom(restarted);
    expect(verifiesAgainst(token, jwks)).toBe(true);
    expect(before).not.toContain(kidOf(token));
  });
});

describe('keys written before encryption or under another key-encryption key', { timeout: 60_000 }, () => {
  let scratch: ScratchDatabase;
  beforeAll(async () => {
    scratch = await createScratchDatabase('idp_keys');
  });
  afterAll(async () => {
    await scratch?.drop();
  });

  const config = (kek?: string) => loadConfig({ DATABASE_URL: scratch.url, ...(kek ? { KEY_ENCRYPTION_KEY: kek } : {}) });
  const storedForm = async (kid: string) => {
    const { rows } = await scratch.db.query<{ private_jwk: unknown; kek: string | null }>(
      `SELECT private_jwk, private_jwk_envelope->>'kek' AS kek FROM signing_keys WHERE kid = $1`,
      [kid],
    );
    return rows[0]!;
  };

  it('loads a plaintext key from a 0001 install, re-encrypts it, and follows a change of key-encryption key', async () => {
    // As migration 0001 and the code of its time stored keys: the private JWK in clear.
    const legacy = {
      ...generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' }),
      kid: 'legacy-es',
      alg: 'ES256',
      use: 'sig',
    };
    await scratch.db.query('INSERT INTO signing_keys (kid, alg, private_jwk) VALUES ($1, $2, $3)', [legacy.kid, 'ES256', legacy]);

    // No KEY_ENCRYPTION_KEY: encrypted under the key kept in server_secrets.
    const first = await loadSigningKeys(scratch.db, { config: config() });
    expect(first.keys.find((key) => key.kid === 'legacy-es')).toEqual(legacy);
    const underStoredKek = await storedForm('legacy-es');
    expect(underStoredKek).toEqual({ private_jwk: null, kek: expect.stringMatching(/^[0-9a-f]{8}$/) });

    // KEY_ENCRYPTION_KEY set: re-encrypted under it at the next load.
    const kekA = randomBytes(32).toString('base64url');
    const second = await loadSigningKeys(scratch.db, { config: config(kekA) });
    expect(second.keys).toEqual(first.keys);
    expect((await storedForm('legacy-es')).kek).toBe(keyEncryptionKey(Buffer.from(kekA, 'base64url')).id);

    // A key-encryption key that never encrypted these rows cannot read them: a one-line configuration error.
    const kekB = randomBytes(32).toString('base64url');
    const kekAId = keyEncryptionKey(Buffer.from(kekA, 'base64url')).id;
    const wrong = loadSigningKeys(scratch.db, { config: config(kekB) });
    await expect(wrong).rejects.toBeInstanceOf(ConfigError);
    await expect(wrong).rejects.toThrow(
      /^signing key \S+ cannot be read: encrypted with key-encryption key [0-9a-f]{8}, which is not configured/,
    );
    await expect(wrong).rejects.toThrow(kekAId);

    // Rotating the key-encryption key: new first, old second; everything moves to the new one.
    await loadSigningKeys(scratch.db, { config: config(`${kekB},${kekA}`) });
    const { rows } = await scratch.db.query<{ kek: string }>(`SELECT private_jwk_envelope->>'kek' AS kek FROM signing_keys`);
    expect(new Set(rows.map((row) => row.kek))).toEqual(new Set([keyEncryptionKey(Buffer.from(kekB, 'base64url')).id]));
  });
});

describe('cookie key rotation', { timeout: 60_000 }, () => {
  let scratch: ScratchDatabase;
  const servers: TestServer[] = [];
  beforeAll(async () => {
    scratch = await createScratchDatabase('idp_keys');
  });
  afterAll(async () => {
    for (const server of servers) await server.close();
    await scratch?.drop();
  });

  const cookieKeys = async () => (await loadServerSecrets(scratch.db, loadConfig({ DATABASE_URL: scratch.url }))).cookieKeys;

  it('adds a key that signs after the delay (or at once), keeping previous keys so sessions stay valid', async () => {
    const env = { DATABASE_URL: scratch.url };
    const first = await startTestServer({ env });
    servers.push(first);
    const [original] = await cookieKeys();
    const person = await createTestAccount(first.db);
    const { client, clientSecret } = await createTestClient(first.db, first.validator);
    const redirectUri = client.redirectUris[0]!;
    const agent = new UserAgent();
    const signIn = async (server: TestServer) => {
      const config = await discoverClient(server.issuer, client.clientId, clientSecret);
      const request = await startAuthorization(config, redirectUri, 'openid');
      return (await completeAuthorization(agent, request.url.href, redirectUri, { ...person, consent: 'allow' })).pages;
    };
    expect(await signIn(first)).toEqual(['login', 'consent']);

    const pending = await idp<{ activatesAt: string; keys: number; dropped: number }>(['keys', 'rotate-cookie-keys'], env);
    expect(pending).toMatchObject({ keys: 2, dropped: 0 });
    expect(Date.parse(pending.activatesAt) - Date.now()).toBeGreaterThan(3500_000);
    const withPending = await cookieKeys();
    expect(withPending).toHaveLength(2);
    expect(withPending[0]).toBe(original); // the previous key still signs

    // A key that never signed is replaced, not kept, by an immediate rotation.
    const immediate = await idp<{ keys: number; dropped: number }>(['keys', 'rotate-cookie-keys', '--activate-immediately'], env);
    expect(immediate).toMatchObject({ keys: 2 });
    const rotated = await cookieKeys();
    expect(rotated).toHaveLength(2);
    expect(rotated[0]).not.toBe(original);
    expect(rotated[0]).not.toBe(withPending[1]);
    expect(rotated[1]).toBe(original);

    // The session cookie signed with the previous key still signs the person in on a restarted instance.
    const restarted = await startTestServer({ env });
    servers.push(restarted);
    expect(await signIn(restarted)).toEqual([]);
  });

  it('refuses with exit code 2 when COOKIE_KEYS comes from the environment', async () => {
    const result = await idpFailure(['keys', 'rotate-cookie-keys'], { DATABASE_URL: scratch.url, COOKIE_KEYS: 'c'.repeat(40) });
    expect(result).toEqual({
      code: 2,
      stderr: 'idp: COOKIE_KEYS is set, so cookie keys come from the environment: put a new key first in COOKIE_KEYS instead\n',
    });
  });

  it('drops a key once the key that replaced it has signed for longer than a session lives', () => {
    const now = new Date('2026-06-01T00:00:00Z');
    const daysAgo = (days: number) => new Date(now.getTime() - days * 86400_000);
    const key = (name: string, activatedDaysAgo: number) => ({
      key: name.repeat(32),
      createdAt: daysAgo(activatedDaysAgo),
      activatesAt: daysAgo(activatedDaysAgo),
    });
    const kept = pruneCookieKeys([key('a', 30), key('c', 1), key('b', 15)], now, 14 * 86400);
    expect(kept.map((k) => k.key[0])).toEqual(['c', 'b']);
  });
});
