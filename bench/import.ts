/**
 * `npm run bench:import`: how long `idp accounts import` takes for a large user base. Writes
 * IMPORT_ROWS (default 1,000,000) JSON lines as a service would export them (bcrypt hashes:
 * the import stores them as they are and hashes nothing), creates a fresh database, then
 * times the real CLI importing the file for a registered service with its mapping written,
 * and a second run of the same file (a no-op). One row in 50 merges into an account that
 * exists already. Prints the times and writes bench/out/import.json.
 *
 * Env: IMPORT_ROWS, DATABASE_URL (the Postgres server to create the database on).
 */
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream, writeFileSync } from 'node:fs';
import { rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import bcrypt from 'bcryptjs';
import pg from 'pg';
import { createBenchDatabase, outDir, root } from './lib/servers.js';

const rows = Number(process.env['IMPORT_ROWS'] ?? 1_000_000);
const run = promisify(execFile);
const log = (message: string) => process.stdout.write(`${new Date().toISOString().slice(11, 19)} ${message}\n`);
const cli = join(root, 'dist', 'cli', 'index.js');

async function writeFile(path: string): Promise<void> {
  // A handful of distinct real hashes, reused: the import never hashes, so this changes nothing it does.
  const hashes = Array.from({ length: 8 }, (_, i) => bcrypt.hashSync(`password ${i}`, 10));
  const out = createWriteStream(path);
  for (let i = 1; i <= rows; i += 1) {
    const line = JSON.stringify({
      email: `person-${i}@shop.example`,
      email_verified: i % 3 !== 0,
      name: `Person ${i}`,
      given_name: 'Person',
      family_name: String(i),
      locale: i % 2 ? 'ja' : 'en',
      password_hash: hashes[i % hashes.length],
      legacy_id: `shop-${i}`,
    });
    if (!out.write(`${line}\n`)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
}

async function main(): Promise<void> {
  const file = join(outDir, 'import-accounts.jsonl');
  const mapping = join(outDir, 'import-mapping.jsonl');
  log(`writing ${rows.toLocaleString('en')} rows to ${file}`);
  await writeFile(file);
  const database = await createBenchDatabase();
  // A pairwise service on an http issuer: the same sub computation as production, no keys to provide.
  const env = { PATH: process.env['PATH'] ?? '', DATABASE_URL: database.url, LOG_LEVEL: 'warn', ISSUER: 'http://localhost:3000' };
  try {
    await run(process.execPath, [cli, 'db', 'migrate', '--json'], { env });
    const { stdout } = await run(
      process.execPath,
      [cli, 'clients', 'add', '--name', 'Shop', '--redirect-uri', 'https://shop.example/cb', '--json'],
      { env },
    );
    const clientId = (JSON.parse(stdout) as { clientId: string }).clientId;
    // Accounts that exist already, verified: one row in 50 of the file joins one of them.
    const db = new pg.Client({ connectionString: database.url });
    await db.connect();
    await db.query(
      `INSERT INTO accounts (id, email, email_key, email_verified, password_hash)
       SELECT 'existing-' || i, 'person-' || i || '@shop.example', 'person-' || i || '@shop.example', true, NULL
       FROM generate_series(1, $1::int, 50) AS i`,
      [rows],
    );

    const timings: Record<string, number> = {};
    for (const [label, args] of [
      ['import', ['--mapping-out', mapping]],
      ['re-run (no-op)', []],
    ] as const) {
      const started = performance.now();
      const { stdout: report } = await run(process.execPath, [cli, 'accounts', 'import', file, '--client', clientId, ...args, '--json'], {
        env,
        maxBuffer: 64 * 1024 * 1024,
      });
      timings[label] = (performance.now() - started) / 1000;
      const { problems: _problems, ...counts } = JSON.parse(report) as Record<string, unknown>;
      log(
        `${label}: ${timings[label]!.toFixed(1)} s, ${Math.round(rows / timings[label]!).toLocaleString('en')} rows/s ${JSON.stringify(counts)}`,
      );
    }
    const { rows: counted } = await db.query<{ accounts: number; mapped: number; hashes: number }>(
      `SELECT (SELECT count(*)::int FROM accounts) AS accounts, (SELECT count(*)::int FROM account_imports) AS mapped,
              (SELECT count(*)::int FROM imported_passwords) AS hashes`,
    );
    await db.end();
    const mappingBytes = (await stat(mapping)).size;
    log(`database: ${JSON.stringify(counted[0])}; mapping ${(mappingBytes / 1e6).toFixed(1)} MB`);
    writeFileSync(join(outDir, 'import.json'), JSON.stringify({ rows, timings, database: counted[0], mappingBytes }, null, 2));
  } finally {
    await database.drop();
    await rm(file, { force: true });
    await rm(mapping, { force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
