/**
 * `npm run bench:soak`: load held, and a crash survived. Two of our servers on one database
 * (one deployment: the same issuer, keys and cookies) take a mixed workload — SSO hops,
 * password sign-ins, refreshes, userinfo — at half the capacity measured first, for
 * SOAK_MINUTES, printing a line per minute. At SOAK_KILL_AT_MINUTE the second server gets
 * kill -9 mid-load; its clients retry on the survivor. At the end every browser session and
 * every token answered before (and after) the kill is used again on the survivor, and the
 * storage tables are checked for anything half-written.
 *
 * Env: SOAK_MINUTES (30), SOAK_KILL_AT_MINUTE (20; 0 = never), SOAK_LOAD (0.5 of capacity),
 * SOAK_WORKERS (16), SOAK_CAPACITY_SECONDS (20).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { createPostgresDatabase } from '../src/db/index.js';
import { createLogger } from '../src/logger.js';
import { createFixtures, type FixtureAccount, type Fixtures } from './lib/fixtures.js';
import { authorize, CookieJar, exchangeCode, refresh, ssoFlow, userinfo, type Tokens } from './lib/flows.js';
import { Http, UnexpectedReply } from './lib/http.js';
import { percentile } from './lib/load.js';
import { rssBytes } from './lib/proc.js';
import { createBenchDatabase, outDir, startOurs, type BenchDatabase, type ServerProcess } from './lib/servers.js';

const settings = {
  minutes: Number(process.env['SOAK_MINUTES'] ?? 30),
  killAtMinute: Number(process.env['SOAK_KILL_AT_MINUTE'] ?? 20),
  load: Number(process.env['SOAK_LOAD'] ?? 0.5),
  workers: Number(process.env['SOAK_WORKERS'] ?? 16),
  capacitySeconds: Number(process.env['SOAK_CAPACITY_SECONDS'] ?? 20),
};
const usersPerWorker = 4;
const scope = 'openid profile email offline_access';
const log = (message: string) => process.stdout.write(`${new Date().toISOString().slice(11, 19)} ${message}\n`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** An error as one line: an error page's text without its markup. */
const readable = (error: unknown) =>
  (error instanceof Error ? error.message : String(error))
    .replace(/<(style|script)[^>]*>[\s\S]*?<\/\1>/g, ' ')
    .replace(/<[^>]+>/g, ' ')
    .replace(/\s+/g, ' ')
    .slice(0, 300);

/** One browser and the relying party's tokens for it; owned by one worker, so never used concurrently. */
interface Person {
  account: FixtureAccount;
  jar: CookieJar;
  tokens: Tokens;
}

type Operation = 'sso' | 'sign-in' | 'refresh' | 'userinfo';
// Out of every 10 operations: 4 SSO hops, 1 password sign-in, 2 refreshes, 3 userinfo calls.
const mix: Operation[] = ['sso', 'userinfo', 'refresh', 'sso', 'userinfo', 'sign-in', 'sso', 'userinfo', 'refresh', 'sso'];

interface Instance {
  server: ServerProcess;
  http: Http;
  alive: boolean;
  /** Operations sent to it and not yet answered. */
  inFlight: number;
}

async function run(operation: Operation, http: Http, person: Person, fixtures: Fixtures): Promise<void> {
  switch (operation) {
    case 'sso':
      person.tokens = await ssoFlow(http, person.jar, fixtures.web, scope);
      return;
    case 'sign-in': {
      const jar = new CookieJar();
      person.tokens = await exchangeCode(http, fixtures.web, await authorize(http, jar, fixtures.web, person.account, scope));
      person.jar = jar;
      return;
    }
    case 'refresh':
      person.tokens = await refresh(http, fixtures.web, person.tokens.refreshToken!);
      return;
    case 'userinfo':
      await userinfo(http, person.tokens.accessToken);
  }
}

/** Per-minute counters; latencies are measured from each operation's scheduled start (no coordinated omission). */
async function setting(url: string, name: 'autovacuum'): Promise<string> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<Record<string, string>>(`SHOW ${name}`)).rows[0]![name]!;
  } finally {
    await client.end();
  }
}

/**
 * What Postgres's background maintenance did since the last call: autovacuum and autoanalyze runs per table and
 * checkpoints, so a minute with a slower p99 can be matched against them.
 */
async function maintenanceWatch(url: string): Promise<{ sinceLast(): Promise<string>; close(): Promise<void> }> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const read = async () => {
    const tables = await client.query<{ relname: string; vacuums: string; analyzes: string }>(
      'SELECT relname, autovacuum_count AS vacuums, autoanalyze_count AS analyzes FROM pg_stat_user_tables',
    );
    const checkpoints = await client.query<{ count: string }>('SELECT checkpoints_timed + checkpoints_req AS count FROM pg_stat_bgwriter');
    const counts = new Map<string, number>();
    for (const row of tables.rows) {
      counts.set(`vacuum ${row.relname}`, Number(row.vacuums));
      counts.set(`analyze ${row.relname}`, Number(row.analyzes));
    }
    counts.set('checkpoint', Number(checkpoints.rows[0]!.count));
    return counts;
  };
  let last = await read();
  return {
    async sinceLast() {
      const now = await read();
      const ran = [...now].filter(([key, count]) => count > (last.get(key) ?? 0)).map(([key]) => key);
      last = now;
      return ran.join(', ');
    },
    close: () => client.end(),
  };
}

class Minute {
  ops = 0;
  errors = 0;
  retried = 0;
  latencies: number[] = [];
  firstError: string | undefined;
}

async function main(): Promise<void> {
  const started = new Date();
  const databases: BenchDatabase[] = [];
  const servers: ServerProcess[] = [];
  const cleanup = async () => {
    for (const server of servers) await server.stop();
    for (const database of databases) await database.drop();
  };
  process.once('SIGINT', () => void cleanup().finally(() => process.exit(130)));
  try {
    const database = await createBenchDatabase();
    databases.push(database);
    const first = await startOurs(database.url, {}, 'soak-a');
    servers.push(first);
    // The second instance of the same deployment: same issuer, so the same tokens and cookies.
    const second = await startOurs(database.url, { ISSUER: first.issuer }, 'soak-b');
    servers.push(second);
    const instances: Instance[] = [first, second].map((server) => ({
      server,
      http: new Http(server.origin, settings.workers),
      alive: true,
      inFlight: 0,
    }));

    const db = createPostgresDatabase(database.url, { poolMax: 2, logger: createLogger({ logLevel: 'silent' }) });
    const people = settings.workers * usersPerWorker;
    const fixtures = await createFixtures(db, people);
    await db.close();
    log(`signing in ${people} browsers`);
    const persons: Person[] = [];
    for (const account of fixtures.accounts) {
      const jar = new CookieJar();
      const instance = instances[persons.length % 2]!;
      const tokens = await exchangeCode(instance.http, fixtures.web, await authorize(instance.http, jar, fixtures.web, account, scope));
      persons.push({ account, jar, tokens });
    }

    let deadline = 0;
    let killAt = Number.POSITIVE_INFINITY;
    let minute = new Minute();
    let retryFailures = 0;
    let interruptedAtKill = 0;
    /** One worker: its own people, its instance until that one dies, operations at the given pace (or back to back). */
    const worker = async (index: number, slots: () => number | undefined, onDone: (latency: number) => void) => {
      const own = persons.filter((_, i) => i % settings.workers === index);
      for (let n = 0; ; n += 1) {
        const scheduled = slots();
        if (scheduled === undefined) return;
        const wait = scheduled - performance.now();
        if (wait > 0) await sleep(wait);
        const person = own[n % own.length]!;
        const operation = mix[(index + n) % mix.length]!;
        let instance = instances[index % 2]!.alive ? instances[index % 2]! : instances[0]!;
        try {
          instance.inFlight += 1;
          try {
            await run(operation, instance.http, person, fixtures);
          } finally {
            instance.inFlight -= 1;
          }
          onDone(performance.now() - scheduled);
        } catch (error) {
          let failure = error;
          // A connection refused or reset by the killed instance: the client retries on the survivor.
          if (!(error instanceof UnexpectedReply) && instance !== instances[0] && performance.now() >= killAt) {
            interruptedAtKill += 1;
            instance = instances[0]!;
            minute.retried += 1;
            try {
              await run(operation, instance.http, person, fixtures);
              onDone(performance.now() - scheduled);
              continue;
            } catch (retryError) {
              retryFailures += 1;
              failure = retryError;
            }
          }
          minute.errors += 1;
          minute.firstError ??= `${operation}: ${readable(failure)}`;
        }
      }
    };

    // Capacity: every worker back to back on both instances.
    log(`measuring capacity for ${settings.capacitySeconds} s`);
    let capacityOps = 0;
    deadline = performance.now() + settings.capacitySeconds * 1000;
    await Promise.all(
      Array.from({ length: settings.workers }, (_, index) =>
        worker(
          index,
          () => (performance.now() < deadline ? performance.now() : undefined),
          () => (capacityOps += 1),
        ),
      ),
    );
    const capacity = capacityOps / settings.capacitySeconds;
    if (minute.errors > 0) throw new Error(`errors while measuring capacity: ${minute.firstError}`);
    const rate = capacity * settings.load;
    log(`capacity ${capacity.toFixed(1)} ops/s; soaking at ${rate.toFixed(1)} ops/s for ${settings.minutes} min`);
    // A server tuned for CI may run without autovacuum: dead rows then pile up and p99 drifts, as no production server would.
    const autovacuum = await setting(database.url, 'autovacuum');
    log(`Postgres autovacuum: ${autovacuum}`);

    const soakStart = performance.now();
    deadline = soakStart + settings.minutes * 60_000;
    if (settings.killAtMinute > 0) killAt = soakStart + settings.killAtMinute * 60_000;
    let slot = 0;
    const nextSlot = () => {
      const at = soakStart + (slot++ * 1000) / rate;
      return at < deadline ? at : undefined;
    };
    const lines: string[] = [];
    const header = '| min | ops/s | errors | retried | p50 ms | p99 ms | RSS a MiB | RSS b MiB | database maintenance |';
    lines.push(header, '|-----|-------|--------|---------|--------|--------|-----------|-----------|----------------------|');
    const maintenance = await maintenanceWatch(database.url);
    log(header);
    const rssSeries: number[] = [];
    let totalErrors = 0;
    let firstError: string | undefined;
    const report = async (index: number) => {
      const done = minute;
      minute = new Minute();
      const seconds = (performance.now() - minuteStarted) / 1000;
      minuteStarted = performance.now();
      const sorted = done.latencies.sort((a, b) => a - b);
      const rss = instances.map((instance) => rssBytes(instance.server.pid) / 2 ** 20);
      rssSeries.push(rss[0]!);
      totalErrors += done.errors;
      firstError ??= done.firstError;
      const ran = await maintenance.sinceLast();
      const line = `| ${index} | ${(done.ops / seconds).toFixed(1)} | ${done.errors} | ${done.retried} | ${percentile(sorted, 50).toFixed(1)} | ${percentile(sorted, 99).toFixed(1)} | ${rss[0]!.toFixed(0)} | ${Number.isNaN(rss[1]!) ? 'gone' : rss[1]!.toFixed(0)} | ${ran || '—'} |`;
      lines.push(line);
      log(line + (done.firstError ? ` first error: ${done.firstError}` : ''));
    };
    // The crash lands while the second instance has requests in flight (waiting up to 5 s for two).
    const killMidRequest = async () => {
      const until = performance.now() + 5000;
      while (instances[1]!.inFlight < 2 && performance.now() < until) await new Promise((resolve) => setImmediate(resolve));
      const inFlight = instances[1]!.inFlight;
      instances[1]!.alive = false;
      await second.crash();
      log(`kill -9 of instance b with ${inFlight} operations in flight; its clients retry on a`);
    };
    let minuteIndex = 0;
    let minuteStarted = performance.now();
    const ticker = setInterval(() => void report((minuteIndex += 1)), 60_000);
    const killer = killAt < deadline ? setTimeout(() => void killMidRequest(), killAt - performance.now()) : undefined;
    await Promise.all(
      Array.from({ length: settings.workers }, (_, index) =>
        worker(index, nextSlot, (latency) => {
          minute.ops += 1;
          minute.latencies.push(latency);
        }),
      ),
    );
    clearInterval(ticker);
    clearTimeout(killer);
    if (performance.now() - minuteStarted > 10_000) await report((minuteIndex += 1));
    await maintenance.close();

    // Everything answered still works on the survivor: each browser's session, its access token, its refresh token.
    log('using every session and token again on the survivor');
    const survivor = instances[0]!.http;
    const failures: string[] = [];
    for (const person of persons) {
      for (const check of ['userinfo', 'refresh', 'sso'] as const) {
        try {
          await run(check, survivor, person, fixtures);
        } catch (error) {
          failures.push(`${person.account.email} ${check}: ${readable(error)}`);
        }
      }
    }

    // Nothing half-written: tokens whose grant is gone, sessions or grants of unknown accounts, open transactions.
    for (const instance of instances) await instance.http.close();
    await first.stop();
    const admin = new pg.Client({ connectionString: database.url });
    await admin.connect();
    const { rows } = await admin.query<{ check: string; count: string }>(`
      SELECT 'tokens of a missing grant' AS check, count(*) FROM oidc_payloads t
        WHERE t.model IN ('AccessToken', 'RefreshToken', 'AuthorizationCode') AND t.grant_id IS NOT NULL AND t.expires_at > now()
          AND NOT EXISTS (SELECT 1 FROM oidc_payloads g WHERE g.model = 'Grant' AND g.id = t.grant_id)
      UNION ALL
      SELECT 'rows of an unknown account', count(*) FROM oidc_payloads p
        WHERE p.account_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM accounts a WHERE a.id = p.account_id)
      UNION ALL
      SELECT 'payloads without kind or exp', count(*) FROM oidc_payloads WHERE NOT (payload ? 'exp')
      UNION ALL
      SELECT 'transactions left open', count(*) FROM pg_stat_activity
        WHERE datname = current_database() AND state LIKE 'idle in transaction%' AND pid <> pg_backend_pid()
      UNION ALL
      SELECT 'prepared transactions', count(*) FROM pg_prepared_xacts`);
    await admin.end();
    const storage = rows.map((row) => `${row.check}: ${row.count}`);
    const storageClean = rows.every((row) => Number(row.count) === 0);

    const warm = rssSeries[Math.min(1, rssSeries.length - 1)] ?? Number.NaN;
    const growth = Math.max(...rssSeries.slice(1)) / warm - 1;
    const summary = [
      `date: ${started.toISOString()}; ${settings.minutes} min at ${settings.load} of capacity (${capacity.toFixed(1)} ops/s measured, ${rate.toFixed(1)} offered), ${settings.workers} workers, mix 4 SSO : 1 sign-in : 2 refresh : 3 userinfo; Postgres autovacuum ${autovacuum}`,
      `errors: ${totalErrors}${firstError ? ` (first: ${firstError})` : ''}`,
      settings.killAtMinute > 0 && settings.killAtMinute < settings.minutes
        ? `kill -9 of instance b at minute ${settings.killAtMinute}: ${interruptedAtKill} operations interrupted, retried on a, ${retryFailures} of the retries failed`
        : 'no kill',
      `RSS of instance a: ${warm.toFixed(0)} MiB at minute 2 (warmed up), highest from then on ${Math.max(...rssSeries.slice(1)).toFixed(0)} MiB (growth ${(growth * 100).toFixed(1)} %, target ≤ 10 %)`,
      `afterwards on the survivor: ${persons.length * 3 - failures.length} of ${persons.length * 3} sessions and tokens still work${failures.length ? `; failures: ${failures.slice(0, 5).join('; ')}` : ''}`,
      `storage check (${storageClean ? 'clean' : 'NOT CLEAN'}): ${storage.join('; ')}`,
    ];
    const output = [...lines, '', ...summary].join('\n');
    process.stdout.write(`\n${output}\n`);
    const file = join(outDir, `soak-${started.toISOString().replace(/[:.]/g, '-')}.md`);
    writeFileSync(file, `${output}\n`);
    log(`wrote ${file}`);
    if (totalErrors > 0 || failures.length > 0 || !storageClean) process.exitCode = 1;
  } finally {
    await cleanup();
  }
}

await main();
