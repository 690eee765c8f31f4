import { randomBytes } from 'node:crypto';
import { errors, type AdapterPayload } from 'oidc-provider';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { createPostgresDatabase, type Database, type Row } from '../../src/db/index.js';
import { createLogger } from '../../src/logger.js';
import { cookieKeySealer } from '../../src/oidc/sealing.js';
import { createAdapterFactory, digestOf, storedId } from '../../src/oidc/adapter.js';
import { sweepExpiredArtefacts as sweepExpired } from '../../src/oidc/artefacts.js';
import { testDatabase } from '../helpers/server.js';

const testSealer = cookieKeySealer(() => ['a cookie key of at least thirty-two characters']);

// The database is shared with other test files running in parallel: every id is random and
// every count is restricted to this file's own rows.

let db: Database;
let Adapter: ReturnType<typeof createAdapterFactory>;

beforeAll(() => {
  db = testDatabase();
  Adapter = createAdapterFactory(db, testSealer);
});
afterAll(async () => {
  await db?.close();
});

function uniqueId(prefix: string): string {
  return `${prefix}-${randomBytes(9).toString('hex')}`;
}

interface StoredRow {
  payload: AdapterPayload;
  grant_id: string | null;
  uid: string | null;
  user_code: string | null;
  account_id: string | null;
  client_id: string | null;
  expires_at: Date | null;
  consumed_at: Date | null;
  /** Seconds from the database's now() until expires_at. */
  ttl: number | null;
}

async function storedRow(model: string, id: string): Promise<StoredRow | undefined> {
  const { rows } = await db.query<StoredRow & Row>(
    `SELECT payload, grant_id, uid, user_code, account_id, client_id, expires_at, consumed_at,
            extract(epoch FROM expires_at - now())::float8 AS ttl
     FROM oidc_payloads WHERE model = $1 AND id = $2`,
    [model, storedId(model, id)],
  );
  return rows[0];
}

async function countRows(where: string, values: unknown[]): Promise<number> {
  const { rows } = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM oidc_payloads WHERE ${where}`, values);
  return rows[0]!.n;
}

/** A Database that records the SQL sent through it, to count statements. */
function recording(inner: Database): { db: Database; statements: string[] } {
  const statements: string[] = [];
  return {
    statements,
    db: {
      ...inner,
      query: <R extends Row = Row>(text: string, values?: readonly unknown[]) => {
        statements.push(text);
        return inner.query<R>(text, values);
      },
    },
  };
}

function nowInSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

describe('PostgresAdapter on oidc_payloads', () => {
  it('upsert stores the payload, copies grantId/uid/userCode/accountId/clientId into their columns, and find returns the payload', async () => {
    const id = uniqueId('at');
    const grantId = uniqueId('grant');
    const uid = uniqueId('uid');
    const userCode = uniqueId('UC');
    const payload: AdapterPayload = {
      jti: id,
      kind: 'AccessToken',
      grantId,
      uid,
      userCode,
      accountId: 'acc-1',
      clientId: 'client-1',
      scope: 'openid',
    };

    await new Adapter('AccessToken').upsert(id, payload, 600);

    const { jti: _jti, userCode: _userCode, ...withoutCredentials } = payload;
    // A user code is kept only as a digest: it comes back only from findByUserCode, which is given it.
    expect(await new Adapter('AccessToken').find(id)).toEqual({ ...withoutCredentials, jti: id });
    const row = await storedRow('AccessToken', id);
    expect(row).toMatchObject({
      payload: withoutCredentials,
      grant_id: grantId,
      uid,
      user_code: digestOf(userCode),
      account_id: 'acc-1',
      client_id: 'client-1',
      consumed_at: null,
    });
    expect(row!.ttl).toBeGreaterThan(590);
    expect(row!.ttl).toBeLessThanOrEqual(600);
  });

  it('stores a credential-keyed row under the SHA-256 of its id and without the id in its payload; grants keep their id', async () => {
    const code = uniqueId('code');
    const grantId = uniqueId('grant');
    await new Adapter('AuthorizationCode').upsert(code, { jti: code, grantId, kind: 'AuthorizationCode' }, 60);
    await new Adapter('Grant').upsert(grantId, { jti: grantId, kind: 'Grant' }, 60);

    const { rows } = await db.query<{ model: string; id: string; payload: Record<string, unknown> }>(
      'SELECT model, id, payload FROM oidc_payloads WHERE grant_id = $1 ORDER BY model',
      [grantId],
    );
    expect(rows).toEqual([
      { model: 'AuthorizationCode', id: digestOf(code), payload: { grantId, kind: 'AuthorizationCode' } },
      { model: 'Grant', id: grantId, payload: { jti: grantId, kind: 'Grant' } },
    ]);
    expect(JSON.stringify(rows)).not.toContain(code);
    expect(await new Adapter('AuthorizationCode').find(code)).toEqual({ jti: code, grantId, kind: 'AuthorizationCode' });
    // The digest itself is no credential: presenting it finds nothing.
    expect(await new Adapter('AuthorizationCode').find(digestOf(code))).toBeUndefined();
  });

  it("keeps an interaction's copies of the session cookie and of its own id out of the row, and gives them back", async () => {
    const uid = uniqueId('interaction');
    const cookie = uniqueId('session-cookie');
    const payload: AdapterPayload = {
      jti: uid,
      kind: 'Interaction',
      returnTo: `http://127.0.0.1:1/auth/${uid}`,
      session: { accountId: 'acc-9', uid: 'session-uid', cookie },
    };
    await new Adapter('Interaction').upsert(uid, payload, 60);

    const row = await storedRow('Interaction', uid);
    expect(JSON.stringify(row)).not.toContain(uid);
    expect(JSON.stringify(row)).not.toContain(cookie);
    expect(row).toMatchObject({ account_id: 'acc-9', payload: { session: { cookie: digestOf(cookie) } } });
    expect(await new Adapter('Interaction').find(uid)).toEqual({
      ...payload,
      session: { accountId: 'acc-9', uid: 'session-uid', cookie: digestOf(cookie) },
    });
  });

  it('upsert without expiresIn stores a NULL expires_at, so the row never expires', async () => {
    const id = uniqueId('session');
    await new Adapter('Session').upsert(id, { jti: id, kind: 'Session' }, undefined);

    const row = await storedRow('Session', id);
    expect(row).toMatchObject({ expires_at: null, grant_id: null, uid: null, user_code: null, account_id: null, client_id: null });
    expect(await new Adapter('Session').find(id)).toEqual({ jti: id, kind: 'Session' });
  });

  it('upsert of an existing id replaces the payload, every copied column and the expiry', async () => {
    const id = uniqueId('rt');
    const adapter = new Adapter('RefreshToken');
    await adapter.upsert(id, { jti: id, grantId: uniqueId('grant'), uid: 'u1', userCode: 'c1', accountId: 'a1', clientId: 'c1' }, 60);
    const replacement: AdapterPayload = { jti: id, accountId: 'a2', clientId: 'c2', rotations: 1 };

    await adapter.upsert(id, replacement, 3600);

    expect(await adapter.find(id)).toEqual(replacement);
    const row = await storedRow('RefreshToken', id);
    expect(row).toMatchObject({ grant_id: null, uid: null, user_code: null, account_id: 'a2', client_id: 'c2' });
    expect(row!.ttl).toBeGreaterThan(3500);
    expect(await countRows('model = $1 AND id = $2', ['RefreshToken', storedId('RefreshToken', id)])).toBe(1);
  });

  it('a Grant row carries its own id as grant_id (so revoking the grant removes it too)', async () => {
    const grantId = uniqueId('grant');
    await new Adapter('Grant').upsert(grantId, { jti: grantId, kind: 'Grant', accountId: 'a', clientId: 'c' }, 3600);

    expect((await storedRow('Grant', grantId))?.grant_id).toBe(grantId);
  });

  it('find returns undefined for an unknown id and for an id stored under another model', async () => {
    const id = uniqueId('shared');
    await new Adapter('AccessToken').upsert(id, { jti: id }, 600);

    expect(await new Adapter('AccessToken').find(uniqueId('missing'))).toBeUndefined();
    expect(await new Adapter('RefreshToken').find(id)).toBeUndefined();
    expect(await new Adapter('AccessToken').find(id)).toEqual({ jti: id });
  });

  it('find, findByUid and findByUserCode return undefined for an expired row even though the row is still stored', async () => {
    const id = uniqueId('expired');
    const uid = uniqueId('uid');
    const userCode = uniqueId('UC');
    // A negative lifetime stores an expires_at in the past.
    await new Adapter('Session').upsert(id, { jti: id, uid }, -60);
    await new Adapter('DeviceCode').upsert(id, { jti: id, userCode }, -700);

    try {
      expect(await storedRow('Session', id)).toBeDefined();
      expect(await new Adapter('Session').find(id)).toBeUndefined();
      expect(await new Adapter('Session').findByUid(uid)).toBeUndefined();
      expect(await new Adapter('DeviceCode').findByUserCode(userCode)).toBeUndefined();
    } finally {
      await db.query('DELETE FROM oidc_payloads WHERE id = $1', [storedId('Session', id)]);
    }
  });

  it('keeps an expired device code findable for a while, so the device hears expired_token rather than an unknown code', async () => {
    const id = uniqueId('device');
    await new Adapter('DeviceCode').upsert(id, { jti: id, userCode: uniqueId('UC') }, -60);
    expect(await new Adapter('DeviceCode').find(id)).toMatchObject({ jti: id });
  });

  it("findByUid returns the model's row with that uid, and undefined for an unknown uid or another model", async () => {
    const id = uniqueId('session');
    const uid = uniqueId('uid');
    await new Adapter('Session').upsert(id, { jti: id, uid, accountId: 'a' }, 600);
    await new Adapter('Session').upsert(uniqueId('session'), { uid: uniqueId('other-uid') }, 600);

    // The session's id is its cookie, kept only as a digest: found by its public handle, it comes without one.
    expect(await new Adapter('Session').findByUid(uid)).toEqual({ uid, accountId: 'a' });
    expect(await new Adapter('Session').findByUid(uniqueId('uid'))).toBeUndefined();
    expect(await new Adapter('Interaction').findByUid(uid)).toBeUndefined();
  });

  it("findByUserCode returns the model's row with that user code, and undefined for an unknown code or another model", async () => {
    const id = uniqueId('device');
    const userCode = uniqueId('UC');
    await new Adapter('DeviceCode').upsert(id, { jti: id, userCode, clientId: 'c' }, 600);

    // The device code comes back (sealed in the row, never in clear) so oidc-provider can save the row under it.
    expect(await new Adapter('DeviceCode').findByUserCode(userCode)).toEqual({ jti: id, userCode, clientId: 'c' });
    const row = await storedRow('DeviceCode', id);
    expect(JSON.stringify(row)).not.toContain(id);
    expect(JSON.stringify(row)).not.toContain(userCode);
    // Sealed under another key, it cannot be opened: the row is of no use without the server's key.
    const stranger = createAdapterFactory(
      db,
      cookieKeySealer(() => ['another cookie key of thirty-two characters']),
    );
    expect(await new stranger('DeviceCode').findByUserCode(userCode)).toBeUndefined();
    expect(await new Adapter('DeviceCode').findByUserCode(uniqueId('UC'))).toBeUndefined();
    expect(await new Adapter('AccessToken').findByUserCode(userCode)).toBeUndefined();
  });

  it('destroy removes only the row of that model and id', async () => {
    const id = uniqueId('tok');
    const other = uniqueId('tok');
    await new Adapter('AccessToken').upsert(id, { jti: id }, 600);
    await new Adapter('AccessToken').upsert(other, { jti: other }, 600);
    await new Adapter('RefreshToken').upsert(id, { jti: id }, 600);

    await new Adapter('AccessToken').destroy(id);

    expect(await storedRow('AccessToken', id)).toBeUndefined();
    expect(await new Adapter('AccessToken').find(id)).toBeUndefined();
    expect(await new Adapter('AccessToken').find(other)).toEqual({ jti: other });
    expect(await new Adapter('RefreshToken').find(id)).toEqual({ jti: id });
  });

  it("revokeByGrantId removes this model's rows for the grant in one statement and leaves other models and other grants alone", async () => {
    const grantId = uniqueId('grant');
    const otherGrant = uniqueId('grant');
    const tokens = [uniqueId('at'), uniqueId('at')];
    for (const id of tokens) await new Adapter('AccessToken').upsert(id, { jti: id, grantId }, 600);
    const refresh = uniqueId('rt');
    await new Adapter('RefreshToken').upsert(refresh, { jti: refresh, grantId }, 600);
    await new Adapter('Grant').upsert(grantId, { jti: grantId }, 600);
    const otherToken = uniqueId('at');
    await new Adapter('AccessToken').upsert(otherToken, { jti: otherToken, grantId: otherGrant }, 600);

    const recorder = recording(db);
    await new (createAdapterFactory(recorder.db, testSealer))('AccessToken').revokeByGrantId(grantId);

    expect(recorder.statements).toHaveLength(1);
    expect(await countRows('model = $1 AND grant_id = $2', ['AccessToken', grantId])).toBe(0);
    for (const id of tokens) expect(await new Adapter('AccessToken').find(id)).toBeUndefined();
    expect(await new Adapter('RefreshToken').find(refresh)).toEqual({ jti: refresh, grantId });
    expect(await new Adapter('Grant').find(grantId)).toEqual({ jti: grantId });
    expect(await new Adapter('AccessToken').find(otherToken)).toEqual({ jti: otherToken, grantId: otherGrant });
  });
});

describe('PostgresAdapter.consume', () => {
  it('marks the row consumed; find then returns the payload with consumed as epoch seconds', async () => {
    const id = uniqueId('code');
    const payload: AdapterPayload = { jti: id, grantId: uniqueId('grant'), clientId: 'c', kind: 'AuthorizationCode' };
    const adapter = new Adapter('AuthorizationCode');
    await adapter.upsert(id, payload, 60);
    expect(await adapter.find(id)).not.toHaveProperty('consumed');

    const before = nowInSeconds();
    await adapter.consume(id);
    const after = nowInSeconds();

    const found = await adapter.find(id);
    expect(found).toMatchObject(payload);
    expect(typeof found!.consumed).toBe('number');
    expect(found!.consumed).toBeGreaterThanOrEqual(before - 1);
    expect(found!.consumed).toBeLessThanOrEqual(after + 1);
    expect((await storedRow('AuthorizationCode', id))!.consumed_at).toBeInstanceOf(Date);
  });

  it('a second consume rejects with InvalidGrant and deletes every row, of every model, sharing the grant_id', async () => {
    const grantId = uniqueId('grant');
    const code = uniqueId('code');
    const accessToken = uniqueId('at');
    const refreshToken = uniqueId('rt');
    await new Adapter('Grant').upsert(grantId, { jti: grantId }, 3600);
    await new Adapter('AuthorizationCode').upsert(code, { jti: code, grantId }, 60);
    await new Adapter('AccessToken').upsert(accessToken, { jti: accessToken, grantId }, 600);
    await new Adapter('RefreshToken').upsert(refreshToken, { jti: refreshToken, grantId }, 600);
    const otherGrant = uniqueId('grant');
    const otherCode = uniqueId('code');
    await new Adapter('AuthorizationCode').upsert(otherCode, { jti: otherCode, grantId: otherGrant }, 60);

    await new Adapter('AuthorizationCode').consume(code);
    const replay = new Adapter('AuthorizationCode').consume(code);

    await expect(replay).rejects.toBeInstanceOf(errors.InvalidGrant);
    await expect(replay).rejects.toMatchObject({ error: 'invalid_grant', statusCode: 400 });
    expect(await countRows('grant_id = $1', [grantId])).toBe(0);
    expect(await new Adapter('AccessToken').find(accessToken)).toBeUndefined();
    expect(await new Adapter('RefreshToken').find(refreshToken)).toBeUndefined();
    expect(await new Adapter('Grant').find(grantId)).toBeUndefined();
    expect(await new Adapter('AuthorizationCode').find(otherCode)).toEqual({ jti: otherCode, grantId: otherGrant });
  });

  it('consume of an id that was never stored rejects with InvalidGrant', async () => {
    await expect(new Adapter('AuthorizationCode').consume(uniqueId('missing'))).rejects.toBeInstanceOf(errors.InvalidGrant);
  });

  it('consume of an expired row rejects with InvalidGrant and does not mark it consumed', async () => {
    const id = uniqueId('expired-code');
    await new Adapter('AuthorizationCode').upsert(id, { jti: id }, -60);
    try {
      await expect(new Adapter('AuthorizationCode').consume(id)).rejects.toBeInstanceOf(errors.InvalidGrant);
      expect((await storedRow('AuthorizationCode', id))?.consumed_at).toBeNull();
    } finally {
      await db.query('DELETE FROM oidc_payloads WHERE model = $1 AND id = $2', ['AuthorizationCode', storedId('AuthorizationCode', id)]);
    }
  });

  it('50 concurrent consume() calls on one id: exactly one resolves, the other 49 reject with InvalidGrant', async () => {
    // A pool of its own with many connections, so the 50 calls really race in Postgres.
    const racing = createPostgresDatabase(inject('databaseUrl'), { poolMax: 25, logger: createLogger({ logLevel: 'silent' }) });
    try {
      await Promise.all(Array.from({ length: 25 }, () => racing.query('SELECT 1')));
      const RacingAdapter = createAdapterFactory(racing, testSealer);
      const id = uniqueId('code');
      const grantId = uniqueId('grant');
      await new RacingAdapter('AuthorizationCode').upsert(id, { jti: id, grantId }, 60);

      const results = await Promise.allSettled(Array.from({ length: 50 }, () => new RacingAdapter('AuthorizationCode').consume(id)));

      const fulfilled = results.filter((result) => result.status === 'fulfilled');
      const rejected = results.filter((result): result is PromiseRejectedResult => result.status === 'rejected');
      expect(fulfilled).toHaveLength(1);
      expect(rejected).toHaveLength(49);
      for (const { reason } of rejected) expect(reason).toBeInstanceOf(errors.InvalidGrant);
      // The losers were replays: the grant is revoked, the code with it.
      expect(await countRows('grant_id = $1', [grantId])).toBe(0);
    } finally {
      await racing.close();
    }
  });
});

describe('PostgresAdapter for the Client model', () => {
  async function clientRow(id: string) {
    const { rows } = await db.query<{ metadata: AdapterPayload; updated_at: Date }>(
      'SELECT metadata, updated_at FROM clients WHERE id = $1',
      [id],
    );
    return rows[0];
  }

  it('upsert writes clients.metadata, find reads it back, and nothing goes to oidc_payloads', async () => {
    const id = uniqueId('client');
    const metadata: AdapterPayload = { client_id: id, redirect_uris: ['https://rp.example/cb'], grant_types: ['authorization_code'] };

    await new Adapter('Client').upsert(id, metadata, undefined);

    expect((await clientRow(id))?.metadata).toEqual(metadata);
    expect(await new Adapter('Client').find(id)).toEqual(metadata);
    expect(await countRows('id = $1', [id])).toBe(0);
  });

  it('find reads a client written straight into the clients table (as the admin CLI does)', async () => {
    const id = uniqueId('client');
    const metadata = { client_id: id, redirect_uris: ['https://cli.example/cb'] };
    await db.query('INSERT INTO clients (id, metadata) VALUES ($1, $2)', [id, metadata]);

    expect(await new Adapter('Client').find(id)).toEqual(metadata);
  });

  it('upsert of an existing client replaces its metadata and advances updated_at', async () => {
    const id = uniqueId('client');
    // In microseconds, as Postgres keeps it: two upserts can fall in the same millisecond.
    const updatedMicros = async () =>
      BigInt(
        (await db.query<{ us: string }>('SELECT (extract(epoch FROM updated_at) * 1000000)::bigint AS us FROM clients WHERE id = $1', [id]))
          .rows[0]!.us,
      );
    await new Adapter('Client').upsert(id, { client_id: id, client_name: 'Before' }, undefined);
    const first = await updatedMicros();

    await new Adapter('Client').upsert(id, { client_id: id, client_name: 'After' }, undefined);

    expect((await clientRow(id))?.metadata).toEqual({ client_id: id, client_name: 'After' });
    expect(await updatedMicros()).toBeGreaterThan(first);
  });

  it('find of an unknown client returns undefined, and destroy deletes the clients row', async () => {
    const id = uniqueId('client');
    await new Adapter('Client').upsert(id, { client_id: id }, undefined);
    expect(await new Adapter('Client').find(uniqueId('client'))).toBeUndefined();

    await new Adapter('Client').destroy(id);

    expect(await clientRow(id)).toBeUndefined();
    expect(await new Adapter('Client').find(id)).toBeUndefined();
  });
});

describe('sweepExpired', () => {
  const model = 'SweepTest';

  async function insertRows(prefix: string, count: number, expiresAt: string): Promise<void> {
    await db.query(
      `INSERT INTO oidc_payloads (model, id, payload, expires_at)
       SELECT $1, $2 || '-' || n::text, '{}'::jsonb, ${expiresAt} FROM generate_series(1, $3::int) AS n`,
      [model, prefix, count],
    );
  }

  function ownRows(prefix: string): Promise<number> {
    return countRows(`model = $1 AND id LIKE $2 || '-%'`, [model, prefix]);
  }

  it('deletes 2,500 expired rows in batches of 1,000 (three DELETEs), returns 2500 and keeps live and never-expiring rows', async () => {
    // Clear whatever expired rows already exist so the count below is this test's alone.
    await sweepExpired(db, 10_000);
    const expired = uniqueId('expired');
    const live = uniqueId('live');
    const forever = uniqueId('forever');
    await insertRows(expired, 2500, `now() - interval '1 minute'`);
    await insertRows(live, 40, `now() + interval '1 hour'`);
    await insertRows(forever, 10, 'NULL');

    const recorder = recording(db);
    const removed = await sweepExpired(recorder.db, 1000);

    // Other test files share the database and their short-lived rows may expire meanwhile.
    expect(removed).toBeGreaterThanOrEqual(2500);
    expect(recorder.statements.filter((sql) => /^\s*DELETE/i.test(sql))).toHaveLength(Math.floor(removed / 1000) + 1);
    expect(await ownRows(expired)).toBe(0);
    expect(await ownRows(live)).toBe(40);
    expect(await ownRows(forever)).toBe(10);
    await db.query(`DELETE FROM oidc_payloads WHERE model = $1 AND (id LIKE $2 || '-%' OR id LIKE $3 || '-%')`, [model, live, forever]);
  });

  it('stops after maxBatches batches and leaves the remaining expired rows for the next sweep', async () => {
    await sweepExpired(db, 10_000);
    const expired = uniqueId('expired');
    await insertRows(expired, 2500, `now() - interval '1 minute'`);

    expect(await sweepExpired(db, 1000, 2)).toBe(2000);
    expect(await ownRows(expired)).toBeGreaterThanOrEqual(500); // rows of parallel test files may expire too
    expect(await sweepExpired(db, 1000, 2)).toBeGreaterThanOrEqual(500);
    expect(await ownRows(expired)).toBe(0);
  });
});
