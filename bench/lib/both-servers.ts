import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createPostgresDatabase } from '../../src/db/index.js';
import { createLogger } from '../../src/logger.js';
import { createFixtures, createStrongAccounts, type Fixtures, type StrongAccounts } from './fixtures.js';
import { outDir, startOurs, startReference, type BenchDatabase, type ServerProcess } from './servers.js';

/**
 * Ours on `database` with the fixtures loaded into it, then the reference fed the same
 * fixtures. Each server is pushed onto `servers` as it starts, for the caller to stop.
 */
export async function startBothServers(
  database: BenchDatabase,
  servers: ServerProcess[],
  counts: { accounts: number; totp: number; passkey: number },
): Promise<{ ours: ServerProcess; reference: ServerProcess; fixtures: Fixtures; strong: StrongAccounts }> {
  const ours = await startOurs(database.url);
  servers.push(ours);
  const db = createPostgresDatabase(database.url, { poolMax: 2, logger: createLogger({ logLevel: 'silent' }) });
  const fixtures = await createFixtures(db, counts.accounts);
  const strong = await createStrongAccounts(db, { totp: counts.totp, passkey: counts.passkey, origin: ours.issuer });
  await db.close();
  const fixturesPath = join(outDir, 'fixtures.json');
  writeFileSync(fixturesPath, JSON.stringify(fixtures));
  const reference = await startReference(fixturesPath);
  servers.push(reference);
  return { ours, reference, fixtures, strong };
}
