/**
 * `npm run bench:scale`: do the database-backed workloads slow down as data grows, and does
 * the sweeper block requests? Two of our servers run side by side, one on an empty database
 * and one on a database seeded by SQL (generate_series) with 1,000,000 accounts and
 * 5,000,000 oidc_payloads rows of the measured service, 1,000,000 of them expired; each
 * workload (SSO hop, client_credentials, refresh, userinfo, introspection, password
 * sign-in) is measured on both, interleaved. Then sweepExpired (the sweeper's own function,
 * same batch size) removes the expired rows while the SSO load runs against the seeded
 * server, and the p99 during the sweep is compared with the p99 without it.
 *
 * Env: BENCH_SECONDS (default 5), BENCH_ROUNDS (default 3), BENCH_CONNECTIONS ("10,50"),
 * BENCH_SCENARIOS (comma list of the workloads, default all), SCALE_ACCOUNTS (1000000),
 * SCALE_ROWS (5000000), SCALE_EXPIRED (1000000), SWEEP_BATCH_SIZE (5000).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { createPostgresDatabase, type Database } from '../src/db/index.js';
import { createLogger } from '../src/logger.js';
import { sweepExpiredArtefacts as sweepExpired } from '../src/oidc/artefacts.js';
import { createFixtures, type Fixtures } from './lib/fixtures.js';
import { authorize, clientCredentials, CookieJar, introspect, refresh, ssoFlow, userinfo } from './lib/flows.js';
import { Http } from './lib/http.js';
import { percentile, runLoad } from './lib/load.js';
import { measure, summarize, type RunSample, type Summary } from './lib/measure.js';
import { createBenchDatabase, outDir, startOurs, type BenchDatabase, type ServerProcess } from './lib/servers.js';
import { prepareUsers, type User } from './lib/users.js';

const settings = {
  seconds: Number(process.env['BENCH_SECONDS'] ?? 5),
  rounds: Number(process.env['BENCH_ROUNDS'] ?? 3),
  connections: (process.env['BENCH_CONNECTIONS'] ?? '10,50').split(',').map(Number),
  accounts: Number(process.env['SCALE_ACCOUNTS'] ?? 1_000_000),
  rows: Number(process.env['SCALE_ROWS'] ?? 5_000_000),
  expired: Number(process.env['SCALE_EXPIRED'] ?? 1_000_000),
  sweepBatchSize: Number(process.env['SWEEP_BATCH_SIZE'] ?? 5000),
  only: process.env['BENCH_SCENARIOS']?.split(','),
};
const scope = 'openid profile email';
// One fixed argon2id hash (our parameters) for every seeded account; nobody signs in as them.
const seededHash = '$argon2id$v=19$m=19456,p=1,t=2$4g/W6CAcl+o69ZpIwA9r3g$q6BhTVYVOO13jbO9rVjy7gNf9vaW/zIdteH4Q6kSEFY';
const log = (message: string) => process.stdout.write(`${new Date().toISOString().slice(11, 19)} ${message}\n`);

/** Accounts and protocol rows by SQL, in chunks, as a long-running deployment would have them. */
async function seed(db: Database, clientId: string): Promise<void> {
  const chunk = 500_000;
  for (let from = 1; from <= settings.accounts; from += chunk) {
    const to = Math.min(from + chunk - 1, settings.accounts);
    await db.query(
      `INSERT INTO accounts (id, email, email_key, email_verified, password_hash, name, given_name, family_name, locale)
       SELECT 'seed-' || i, 'seed-' || i || '@example.test', 'seed-' || i || '@example.test', true, $3,
              'Seed Person ' || i, 'Seed', 'Person ' || i, 'en'
       FROM generate_series($1::int, $2::int) AS i`,
      [from, to, seededHash],
    );
    log(`  accounts ${to.toLocaleString('en')}`);
  }
  // Models in proportion: sessions, grants, access tokens, refresh tokens, codes. The first
  // SCALE_EXPIRED rows expired an hour ago; the rest live for a day.
  for (let from = 1; from <= settings.rows; from += chunk) {
    const to = Math.min(from + chunk - 1, settings.rows);
    await db.query(
      `INSERT INTO oidc_payloads (model, id, payload, grant_id, uid, account_id, client_id, expires_at)
       SELECT m.model, md5(i::text) || md5((i * 31)::text),
              jsonb_build_object('kind', m.model, 'accountId', 'seed-' || a.n, 'clientId', $4::text, 'exp', 2000000000),
              CASE WHEN m.model = 'Session' THEN NULL ELSE 'seed-grant-' || (i / 5) END,
              CASE WHEN m.model = 'Session' THEN md5((i * 17)::text) END,
              'seed-' || a.n, $4::text,
              CASE WHEN i <= $3::int THEN now() - interval '1 hour' ELSE now() + interval '1 day' END
       FROM generate_series($1::int, $2::int) AS i,
            LATERAL (SELECT (ARRAY['Session', 'Grant', 'AccessToken', 'RefreshToken', 'AuthorizationCode'])[1 + i % 5] AS model) m,
            LATERAL (SELECT 1 + (i::bigint * 7919) % $5::int AS n) a`,
      [from, to, settings.expired, clientId, settings.accounts],
    );
    log(`  oidc_payloads ${to.toLocaleString('en')}`);
  }
  // A long-running database is vacuumed and checkpointed: without this, autovacuum and the
  // checkpoint of the seeding's WAL would run during the measurements.
  await db.query('VACUUM (ANALYZE) accounts');
  await db.query('VACUUM (ANALYZE) oidc_payloads');
  await db.query('CHECKPOINT').catch(() => undefined);
}

interface Side {
  label: string;
  server: ServerProcess;
  database: BenchDatabase;
  admin: pg.Client;
  fixtures: Fixtures;
  users: User[];
}

// Everything started, so that a failure half-way through still stops and drops it all.
const databases: BenchDatabase[] = [];
const servers: ServerProcess[] = [];

async function startSide(label: string, maxConnections: number): Promise<Side> {
  const database = await createBenchDatabase();
  databases.push(database);
  // The built-in sweeper stays out of the way; the sweep phase runs it explicitly.
  const server = await startOurs(database.url, { SWEEP_INTERVAL_SECONDS: '86400' }, `ours-${label}`);
  servers.push(server);
  const db = createPostgresDatabase(database.url, { poolMax: 2, logger: createLogger({ logLevel: 'silent' }) });
  const fixtures = await createFixtures(db, maxConnections);
  await db.close();
  const admin = new pg.Client({ connectionString: database.url });
  await admin.connect();
  const users = await prepareUsers(server.origin, fixtures.web, fixtures.accounts, maxConnections, scope);
  return { label, server, database, admin, fixtures, users };
}

const fmt = (value: number) => (Number.isFinite(value) ? value.toFixed(1) : '-');

/** The workloads of `npm run bench` that touch the database, as the seeded rows' service runs them. */
interface Workload {
  name: string;
  label: string;
  run: (side: Side, http: Http, worker: number) => Promise<unknown>;
}

const allWorkloads: Workload[] = [
  { name: 'sso_code_flow', label: 'SSO hop', run: (side, http, w) => ssoFlow(http, side.users[w]!.jar, side.fixtures.web, scope) },
  { name: 'client_credentials', label: 'client_credentials', run: (side, http) => clientCredentials(http, side.fixtures.machine) },
  // The web client is confidential: its refresh token is kept, so each worker reuses its own.
  { name: 'refresh', label: 'refresh', run: (side, http, w) => refresh(http, side.fixtures.web, side.users[w]!.refreshToken) },
  { name: 'userinfo', label: 'userinfo', run: (side, http, w) => userinfo(http, side.users[w]!.accessToken) },
  {
    name: 'introspection',
    label: 'introspection',
    run: (side, http, w) => introspect(http, side.fixtures.web, side.users[w]!.accessToken),
  },
  {
    name: 'password_sign_in',
    label: 'password sign-in',
    run: (side, http, w) => authorize(http, new CookieJar(), side.fixtures.firstParty, side.fixtures.accounts[w]!, 'openid profile'),
  },
];
const workloads = allWorkloads.filter((workload) => !settings.only || settings.only.includes(workload.name));

async function main(): Promise<void> {
  const started = new Date();
  const maxConnections = Math.max(...settings.connections);
  const sides: Side[] = [];
  const cleanup = async () => {
    for (const side of sides) await side.admin.end().catch(() => undefined);
    for (const server of servers) await server.stop();
    for (const database of databases) await database.drop();
  };
  process.once('SIGINT', () => void cleanup().finally(() => process.exit(130)));
  try {
    log('starting two servers (empty and seeded databases)');
    const empty = await startSide('empty', maxConnections);
    sides.push(empty);
    const seeded = await startSide('seeded', maxConnections);
    sides.push(seeded);

    log(`seeding ${settings.accounts.toLocaleString('en')} accounts and ${settings.rows.toLocaleString('en')} oidc_payloads rows`);
    const seedStarted = performance.now();
    const seedDb = createPostgresDatabase(seeded.database.url, { poolMax: 2, logger: createLogger({ logLevel: 'silent' }) });
    await seed(seedDb, seeded.fixtures.web.id);
    const seedSeconds = (performance.now() - seedStarted) / 1000;
    const { rows: sizes } = await seeded.admin.query<{ accounts: string; payloads: string; bytes: string }>(
      `SELECT (SELECT count(*) FROM accounts) AS accounts, (SELECT count(*) FROM oidc_payloads) AS payloads, pg_database_size(current_database()) AS bytes`,
    );
    log(`seeded in ${seedSeconds.toFixed(0)} s: ${JSON.stringify(sizes[0])}`);

    const comparison: {
      workload: string;
      connections: number;
      empty: Summary;
      seeded: Summary;
      samples: Record<string, RunSample[]>;
    }[] = [];
    for (const workload of workloads) {
      for (const connections of settings.connections) {
        const samples: Record<string, RunSample[]> = { empty: [], seeded: [] };
        const pools = new Map(sides.map((side) => [side.label, new Http(side.server.origin, connections)]));
        const operation = (side: Side) => (w: number) => workload.run(side, pools.get(side.label)!, w).then(() => undefined);
        for (const side of sides) await measure({ server: side.server }, connections, 1, operation(side));
        for (let round = 0; round < settings.rounds; round += 1) {
          for (const side of round % 2 === 0 ? sides : [...sides].reverse()) {
            const observed = { server: side.server, postgres: { client: side.admin, database: side.database.name } };
            samples[side.label]!.push(await measure(observed, connections, settings.seconds, operation(side)));
          }
        }
        for (const http of pools.values()) await http.close();
        comparison.push({
          workload: workload.label,
          connections,
          empty: summarize(samples['empty']!),
          seeded: summarize(samples['seeded']!),
          samples,
        });
        const last = comparison.at(-1)!;
        log(
          `${workload.label} @${connections}: empty ${fmt(last.empty.opsPerSecond)}/s p99 ${fmt(last.empty.p99Ms)} ms; ` +
            `seeded ${fmt(last.seeded.opsPerSecond)}/s p99 ${fmt(last.seeded.p99Ms)} ms`,
        );
      }
    }

    log(
      `sweeping ${settings.expired.toLocaleString('en')} expired rows (batches of ${settings.sweepBatchSize}) under SSO load at 10 connections`,
    );
    const http = new Http(seeded.server.origin, 10);
    const operation = (w: number) => ssoFlow(http, seeded.users[w]!.jar, seeded.fixtures.web, scope).then(() => undefined);
    const quiet = await runLoad(10, settings.seconds, operation);
    const sweepStarted = performance.now();
    let sweepSeconds = 0;
    let removed = 0;
    const sweep = sweepExpired(seedDb, settings.sweepBatchSize, 10_000).then((count) => {
      removed = count;
      sweepSeconds = (performance.now() - sweepStarted) / 1000;
    });
    // Load for as long as the sweep runs (bounded: at most 10 minutes).
    const during = { latencies: [] as number[], ops: 0, errors: 0, seconds: 0 };
    let finished = false;
    void sweep.finally(() => (finished = true));
    while (!finished && performance.now() - sweepStarted < 600_000) {
      const slice = await runLoad(10, 2, operation);
      during.latencies.push(...slice.latencies);
      during.ops += slice.ops;
      during.errors += slice.errors;
      during.seconds += slice.seconds;
    }
    await sweep;
    await http.close();
    await seedDb.close();
    const sortedQuiet = quiet.latencies.sort((a, b) => a - b);
    const sortedDuring = during.latencies.sort((a, b) => a - b);
    const sweepResult = {
      removed,
      sweepSeconds,
      rowsPerSecond: removed / sweepSeconds,
      batchSize: settings.sweepBatchSize,
      quiet: {
        opsPerSecond: quiet.ops / quiet.seconds,
        p50Ms: percentile(sortedQuiet, 50),
        p99Ms: percentile(sortedQuiet, 99),
        errors: quiet.errors,
      },
      duringSweep: {
        opsPerSecond: during.ops / during.seconds,
        p50Ms: percentile(sortedDuring, 50),
        p99Ms: percentile(sortedDuring, 99),
        maxMs: sortedDuring.at(-1) ?? Number.NaN,
        errors: during.errors,
      },
    };

    const lines = [
      `date: ${started.toISOString()}; seeded ${settings.accounts.toLocaleString('en')} accounts + ${settings.rows.toLocaleString('en')} oidc_payloads ` +
        `(${settings.expired.toLocaleString('en')} expired) in ${seedSeconds.toFixed(0)} s; database ${(Number(sizes[0]!.bytes) / 1024 ** 3).toFixed(2)} GiB`,
      '',
      '| workload | conns | empty/s | seeded/s | ratio | empty p50 | seeded p50 | empty p99 | seeded p99 | p99 ratio | errors | q/op empty/seeded | within 10% |',
      '|---|---|---|---|---|---|---|---|---|---|---|---|---|',
      ...comparison.map((c) => {
        const ratio = c.seeded.opsPerSecond / c.empty.opsPerSecond;
        const p99Ratio = c.seeded.p99Ms / c.empty.p99Ms;
        return `| ${c.workload} | ${c.connections} | ${fmt(c.empty.opsPerSecond)} | ${fmt(c.seeded.opsPerSecond)} | ${ratio.toFixed(2)} | ${fmt(c.empty.p50Ms)} | ${fmt(c.seeded.p50Ms)} | ${fmt(c.empty.p99Ms)} | ${fmt(c.seeded.p99Ms)} | ${p99Ratio.toFixed(2)} | ${c.empty.errors + c.seeded.errors} | ${fmt(c.empty.queriesPerOp ?? Number.NaN)}/${fmt(c.seeded.queriesPerOp ?? Number.NaN)} | ${ratio >= 0.9 && p99Ratio <= 1.1 ? 'yes' : 'NO'} |`;
      }),
      '',
      `sweep: removed ${removed.toLocaleString('en')} expired rows in ${sweepSeconds.toFixed(1)} s (${sweepResult.rowsPerSecond.toFixed(0)} rows/s, batches of ${settings.sweepBatchSize})`,
      `SSO @10 without sweep: ${fmt(sweepResult.quiet.opsPerSecond)}/s, p50 ${fmt(sweepResult.quiet.p50Ms)} ms, p99 ${fmt(sweepResult.quiet.p99Ms)} ms, errors ${quiet.errors}`,
      `SSO @10 during sweep:  ${fmt(sweepResult.duringSweep.opsPerSecond)}/s, p50 ${fmt(sweepResult.duringSweep.p50Ms)} ms, p99 ${fmt(sweepResult.duringSweep.p99Ms)} ms, max ${fmt(sweepResult.duringSweep.maxMs)} ms, errors ${during.errors}`,
    ];
    process.stdout.write(`\n${lines.join('\n')}\n`);
    const report = { date: started.toISOString(), settings, seedSeconds, sizes: sizes[0], comparison, sweep: sweepResult };
    const stamp = started.toISOString().replace(/[:.]/g, '-');
    writeFileSync(join(outDir, `scale-${stamp}.json`), JSON.stringify(report, null, 2));
    writeFileSync(join(outDir, 'scale-latest.md'), `${lines.join('\n')}\n`);
    process.stdout.write(`\nwrote bench/out/scale-${stamp}.json and bench/out/scale-latest.md\n`);
  } finally {
    await cleanup();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`bench:scale failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
