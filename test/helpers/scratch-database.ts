import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';
import { createPostgresDatabase, type Database } from '../../src/db/index.js';
import { migrate } from '../../src/db/migrate.js';
import { createLogger } from '../../src/logger.js';

export interface ScratchDatabase {
  url: string;
  db: Database;
  drop(): Promise<void>;
}

const silent = createLogger({ logLevel: 'silent' });

/**
 * A migrated database of the test's own on the run's server, for tests that change what every
 * user of a database sees (which key signs): the run's database is shared by files running in
 * parallel.
 */
export async function createScratchDatabase(prefix = 'idp_scratch'): Promise<ScratchDatabase> {
  const adminUrl = new URL(inject('databaseUrl'));
  adminUrl.pathname = '/postgres';
  const name = `${prefix}_${Date.now()}_${randomBytes(3).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl.toString() });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  const db = createPostgresDatabase(url.toString(), { poolMax: 3, logger: silent });
  await migrate(db, silent);
  return {
    url: url.toString(),
    db,
    async drop() {
      await db.close();
      const client = new pg.Client({ connectionString: adminUrl.toString() });
      await client.connect();
      await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await client.end();
    },
  };
}
