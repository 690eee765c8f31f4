import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createPostgresDatabase, type Database } from '../../src/db/index.js';
import { createLogger } from '../../src/logger.js';

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
