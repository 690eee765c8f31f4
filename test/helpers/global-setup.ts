import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { createPostgresDatabase } from '../../src/db/index.js';
import { migrate } from '../../src/db/migrate.js';
import { createLogger } from '../../src/logger.js';

declare module 'vitest' {
  export interface ProvidedContext {
    databaseUrl: string;
  }
}

/** The server the test run creates its own database on; override with DATABASE_URL. */
const adminUrl = process.env['DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/postgres';

function withDatabase(url: string, name: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${name}`;
  return parsed.toString();
}

/** One fresh database per test run, migrated, dropped afterwards. */
export default async function setup(project: TestProject) {
  const name = `idp_test_${Date.now()}_${randomBytes(3).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();

  const url = withDatabase(adminUrl, name);
  const db = createPostgresDatabase(url, { poolMax: 2, logger: createLogger({ logLevel: 'silent' }) });
  await migrate(db, createLogger({ logLevel: 'silent' }));
  await db.close();
  project.provide('databaseUrl', url);

  return async () => {
    const client = new pg.Client({ connectionString: adminUrl });
    await client.connect();
    await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await client.end();
  };
}
