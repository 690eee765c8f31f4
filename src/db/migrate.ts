import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { Database } from './index.js';
import type { Logger } from '../logger.js';

export const migrationsDirectory = fileURLToPath(new URL('../../migrations/', import.meta.url));

// Arbitrary constant: every instance and CLI serialises migrations on this advisory lock.
const MIGRATION_LOCK_ID = 727_001;

export interface MigrationResult {
  applied: string[];
  alreadyApplied: string[];
}

/**
 * Applies migrations/NNNN_name.sql in order, each in its own transaction, recording each
 * in schema_migrations. Safe to run from several processes at once and to run again.
 */
export async function migrate(db: Database, logger: Logger, directory = migrationsDirectory): Promise<MigrationResult> {
  const files = (await readdir(directory)).filter((name) => /^\d{4}_[\w-]+\.sql$/.test(name)).sort();
  // Under the same lock as the migrations: two processes creating this table at once on an
  // empty database would otherwise collide in pg_type (23505).
  await db.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK_ID]);
    await tx.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version text PRIMARY KEY,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`);
  });
  const result: MigrationResult = { applied: [], alreadyApplied: [] };
  for (const file of files) {
    const version = file.replace(/\.sql$/, '');
    const sql = await readFile(`${directory}/${file}`, 'utf8');
    const applied = await db.transaction(async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK_ID]);
      const existing = await tx.query('SELECT 1 FROM schema_migrations WHERE version = $1', [version]);
      if (existing.rowCount) return false;
      await tx.query(sql);
      await tx.query('INSERT INTO schema_migrations (version) VALUES ($1)', [version]);
      return true;
    });
    (applied ? result.applied : result.alreadyApplied).push(version);
    if (applied) logger.info({ migration: version }, 'migration applied');
  }
  return result;
}
