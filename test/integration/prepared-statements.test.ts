import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { createPostgresDatabase, type Database } from '../../src/db/index.js';
import { createLogger } from '../../src/logger.js';
import { createAdapterFactory } from '../../src/oidc/adapter.js';
import { latestGrantId } from '../../src/oidc/artefacts.js';
import { createScratchDatabase, type ScratchDatabase } from '../helpers/scratch-database.js';

/*
 * Parameterised statements are sent as named prepared statements (parsed and planned once per
 * connection), while scripts of several commands (migrations) still run as plain text.
 */
describe('prepared statements', () => {
  const logger = createLogger({ logLevel: 'silent' });
  let db: Database;
  let unprepared: Database;

  beforeAll(() => {
    // One connection each, so the catalogue queried is the session's that ran the statements.
    db = createPostgresDatabase(inject('databaseUrl'), { poolMax: 1, logger });
    unprepared = createPostgresDatabase(inject('databaseUrl'), { poolMax: 1, logger, preparedStatements: false });
  });
  afterAll(async () => {
    await db?.close();
    await unprepared?.close();
  });

  const preparedInSession = async (database: Database) =>
    (await database.query<{ name: string }>('SELECT name FROM pg_prepared_statements ORDER BY name')).rows.map((row) => row.name);

  it('prepares a parameterised statement once per connection and reuses it, in and out of transactions', async () => {
    for (const n of [1, 2, 3]) expect((await db.query<{ n: number }>('SELECT $1::int + 1 AS n', [n])).rows[0]!.n).toBe(n + 1);
    await db.transaction(async (tx) => {
      expect((await tx.query<{ n: number }>('SELECT $1::int + 1 AS n', [9])).rows[0]!.n).toBe(10);
    });
    const names = await preparedInSession(db);
    expect(names).toHaveLength(1);
    expect(names[0]).toMatch(/^idp_[\w-]{22}$/);
  });

  it('runs a script of several commands unprepared', async () => {
    await db.query('CREATE TEMP TABLE prepared_probe (n int); INSERT INTO prepared_probe VALUES (1), (2)');
    expect((await db.query<{ n: string }>('SELECT count(*) AS n FROM prepared_probe WHERE n >= $1', [1])).rows[0]!.n).toBe('2');
  });

  it('prepares nothing when turned off (the embedded database, whose connections share one session)', async () => {
    await unprepared.query('SELECT $1::int AS n', [1]);
    expect(await preparedInSession(unprepared)).toEqual([]);
  });
});

/*
 * A statement prepared while a table was small keeps the plan made then (until an ANALYZE,
 * which nothing runs here: autovacuum is off on the CI's Postgres). Each test starts on a new,
 * never-analysed database, as a new deployment does, and then grows the table.
 * - The adapter's batched token reads got a hash join over a scan of every row. They are
 *   planned at each execution instead.
 * - The latest-grant lookup got a walk of every grant of the service. An index by account
 *   and service leaves the planner nothing worse to pick.
 */
describe('statements first run while oidc_payloads was small', () => {
  const logger = createLogger({ logLevel: 'silent' });
  let scratch: ScratchDatabase;
  let db: Database;

  beforeEach(async () => {
    scratch = await createScratchDatabase('idp_plans');
    db = createPostgresDatabase(scratch.url, { poolMax: 1, logger });
  });
  afterEach(async () => {
    await db?.close();
    await scratch?.drop();
  });

  /** A counter of pg_stat_user_tables for oidc_payloads: how much it grew during `work` on `db`'s one connection. */
  async function tableStatDuring(column: 'seq_scan' | 'idx_tup_fetch', work: () => Promise<unknown>): Promise<number> {
    const read = async () => {
      await db.query('SELECT pg_stat_force_next_flush()');
      await db.query('SELECT 1');
      const { rows } = await scratch.db.query<{ n: string }>(
        `SELECT ${column} AS n FROM pg_stat_user_tables WHERE relname = 'oidc_payloads'`,
        undefined,
      );
      return Number(rows[0]!.n);
    };
    await scratch.db.query('SELECT pg_stat_clear_snapshot()');
    const before = await read();
    await work();
    await scratch.db.query('SELECT pg_stat_clear_snapshot()');
    return (await read()) - before;
  }

  it('batched token reads use the index however small the table was when the connection first ran them', async () => {
    const AccessToken = new (createAdapterFactory(db, { seal: () => null, open: () => undefined }))('AccessToken');
    const tokens = ['a', 'b', 'c'];
    for (const id of tokens) await AccessToken.upsert(id, { accountId: 'x', clientId: 'y' } as never, 3600);
    // Ten batched reads on the small table: past the five after which Postgres settles on a generic plan.
    for (let round = 0; round < 10; round += 1) {
      expect((await Promise.all(tokens.map((id) => AccessToken.find(id)))).every(Boolean)).toBe(true);
    }
    await scratch.db.query(
      `INSERT INTO oidc_payloads (model, id, payload, expires_at)
       SELECT 'AccessToken', md5(g::text), '{}', now() + interval '1 hour' FROM generate_series(1, 20000) AS g`,
    );
    const scans = await tableStatDuring('seq_scan', async () => {
      for (let round = 0; round < 5; round += 1) {
        expect((await Promise.all(tokens.map((id) => AccessToken.find(id)))).every(Boolean)).toBe(true);
      }
    });
    expect(scans).toBe(0);
  });

  it('the latest grant of an account to a service is found by both, not among every grant of the service', async () => {
    const grant = (id: string, accountId: string) =>
      scratch.db.query(
        `INSERT INTO oidc_payloads (model, id, payload, account_id, client_id, expires_at)
         VALUES ('Grant', $1, jsonb_build_object('iat', 1), $2, 'popular-service', now() + interval '1 hour')`,
        [id, accountId],
      );
    await grant('first', 'person');
    // Ten lookups on the small table: past the five after which Postgres settles on a generic plan.
    for (let round = 0; round < 10; round += 1) expect(await latestGrantId(db, 'person', 'popular-service')).toBe('first');
    await scratch.db.query(
      `INSERT INTO oidc_payloads (model, id, payload, account_id, client_id, expires_at)
       SELECT 'Grant', 'g' || g, jsonb_build_object('iat', g), 'someone-' || g, 'popular-service', now() + interval '1 hour'
       FROM generate_series(1, 20000) AS g`,
    );
    const rowsRead = await tableStatDuring('idx_tup_fetch', async () => {
      for (let round = 0; round < 5; round += 1) expect(await latestGrantId(db, 'person', 'popular-service')).toBe('first');
    });
    // Without the index by both columns, each lookup read the service's 20,001 grants.
    expect(rowsRead).toBeLessThan(50);
  });
});
