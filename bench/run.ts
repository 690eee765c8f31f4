/**
 * `npm run bench`: our server (on a fresh Postgres database) against the reference
 * (oidc-provider + in-memory adapter, bench/reference-server.ts), both as child processes
 * on loopback, measured in interleaved rounds (A B, B A, A B …) per scenario and
 * concurrency. Prints a table and writes bench/out/bench-<time>.json, latest.json, latest.md.
 *
 * Env: BENCH_SECONDS (per run, default 3), BENCH_ROUNDS (per server, default 3),
 * BENCH_WARMUP_SECONDS (default 1), BENCH_CONNECTIONS (default "10,50"), BENCH_SCENARIOS
 * (comma list, default all; totp_sign_in and passkey_sign_in run on ours alone),
 * BENCH_TOTP_ACCOUNTS (authenticator-app accounts to cycle through, default 1500), BENCH_CPU_PROF=1 (servers write .cpuprofile files to
 * bench/out/profiles), BENCH_OURS_DIR / BENCH_OURS_ENV (measure another build or setting of
 * ours, see lib/servers.ts), DATABASE_URL (the Postgres server to create the database on).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import type { FixtureClient, Fixtures, StrongAccounts } from './lib/fixtures.js';
import { Secret, TOTP } from 'otpauth';
import {
  authorize,
  clientCredentials,
  CookieJar,
  getJson,
  introspect,
  passkeySignIn,
  refresh,
  secondStepSignIn,
  ssoFlow,
  userinfo,
} from './lib/flows.js';
import { measureFloors, type Floors } from './lib/floors.js';
import { Http } from './lib/http.js';
import { measure, summarize, type Observed, type RunSample, type Summary } from './lib/measure.js';
import { peakRssBytes } from './lib/proc.js';
import { prepareUsers, type User } from './lib/users.js';
import { startBothServers } from './lib/both-servers.js';
import { createBenchDatabase, outDir, type ServerProcess } from './lib/servers.js';

const settings = {
  seconds: Number(process.env['BENCH_SECONDS'] ?? 3),
  warmupSeconds: Number(process.env['BENCH_WARMUP_SECONDS'] ?? 1),
  rounds: Number(process.env['BENCH_ROUNDS'] ?? 3),
  connections: (process.env['BENCH_CONNECTIONS'] ?? '10,50').split(',').map(Number),
  only: process.env['BENCH_SCENARIOS']?.split(','),
};
const ssoScope = 'openid profile email';

interface Target extends Observed {
  name: 'ours' | 'reference';
  /** Signed in at the confidential web client. */
  users: User[];
  /** Signed in at the public app client (rotating refresh tokens). */
  appUsers: User[];
  pools: Map<number, Http>;
}

interface Scenario {
  name: string;
  /** ours/reference throughput the issue asks for; undefined: reported only. */
  minRatio?: number;
  /** Only our server has it (second factors): measured against ours alone. */
  oursOnly?: boolean;
  run(target: Target, http: Http, worker: number): Promise<void>;
}

let fixtures: Fixtures;
let strong: StrongAccounts;

/**
 * Authenticator-app codes the server will accept: each account's steps strictly increase
 * (a code is accepted once), within the current step and the next (±1 step of drift), so an
 * account serves two sign-ins per 30 s and the bench cycles through many.
 */
class AuthenticatorCodes {
  private next = 0;
  private readonly lastStep = new Map<number, number>();

  take(): { account: StrongAccounts['totp'][number]; code: string } {
    for (let tries = 0; tries < strong.totp.length; tries += 1) {
      const index = this.next++ % strong.totp.length;
      const now = Math.floor(Date.now() / 30_000);
      const step = Math.max(now, (this.lastStep.get(index) ?? -1) + 1);
      if (step > now + 1) continue;
      this.lastStep.set(index, step);
      const account = strong.totp[index]!;
      return { account, code: TOTP.generate({ secret: Secret.fromBase32(account.secret), timestamp: step * 30_000 }) };
    }
    throw new Error('every authenticator account used its codes this step: raise BENCH_TOTP_ACCOUNTS');
  }
}
const authenticatorCodes = new AuthenticatorCodes();

async function refreshAs(http: Http, user: User, client: FixtureClient): Promise<void> {
  try {
    user.refreshToken = (await refresh(http, client, user.refreshToken)).refreshToken!;
  } catch (error) {
    user.refreshToken = (await ssoFlow(http, user.jar, client, ssoScope)).refreshToken!;
    throw error;
  }
}

const scenarios: Scenario[] = [
  { name: 'discovery', run: (_t, http) => getJson(http, '/.well-known/openid-configuration') },
  { name: 'jwks', run: (_t, http) => getJson(http, '/jwks') },
  { name: 'client_credentials', minRatio: 0.8, run: (_t, http) => clientCredentials(http, fixtures.machine) },
  {
    name: 'sso_code_flow',
    minRatio: 0.8,
    run: async (t, http, w) => {
      await ssoFlow(http, t.users[w]!.jar, fixtures.web, ssoScope);
    },
  },
  {
    name: 'password_sign_in',
    minRatio: 0.9,
    run: async (_t, http, w) => {
      await authorize(http, new CookieJar(), fixtures.firstParty, fixtures.accounts[w]!, 'openid profile');
    },
  },
  // A confidential client's refresh: its refresh token is kept (bound to its secret).
  { name: 'refresh', minRatio: 0.8, run: (t, http, w) => refreshAs(http, t.users[w]!, fixtures.web) },
  // A public client's refresh: the refresh token rotates (one consumed, one inserted).
  { name: 'refresh_rotation', minRatio: 0.8, run: (t, http, w) => refreshAs(http, t.appUsers[w]!, fixtures.app) },
  {
    name: 'totp_sign_in',
    oursOnly: true,
    run: async (_t, http) => {
      const { account, code } = authenticatorCodes.take();
      await secondStepSignIn(http, new CookieJar(), fixtures.firstParty, account, code, 'openid profile');
    },
  },
  {
    name: 'passkey_sign_in',
    oursOnly: true,
    run: async (_t, http, w) => {
      await passkeySignIn(http, new CookieJar(), fixtures.firstParty, strong.passkey[w]!.authenticator, 'openid profile');
    },
  },
  { name: 'userinfo', minRatio: 0.8, run: (t, http, w) => userinfo(http, t.users[w]!.accessToken) },
  { name: 'introspection', minRatio: 0.8, run: (t, http, w) => introspect(http, fixtures.web, t.users[w]!.accessToken) },
];

function poolFor(target: Target, concurrency: number): Http {
  let http = target.pools.get(concurrency);
  if (!http) target.pools.set(concurrency, (http = new Http(target.server.origin, concurrency)));
  return http;
}

interface Row {
  scenario: string;
  connections: number;
  ours: Summary;
  /** null for a scenario only ours has. */
  reference: Summary | null;
  samples: { ours: RunSample[]; reference: RunSample[] };
  throughputRatio: number;
  p99Ratio: number;
  minRatio: number | undefined;
  met: { throughput: boolean | null; errors: boolean; p99: boolean };
}

const fmt = (value: number | null, digits = 1) => (value === null || !Number.isFinite(value) ? '-' : value.toFixed(digits));
const mib = (bytes: number) => (bytes / 1024 / 1024).toFixed(0);

function tableLines(rows: Row[]): string[] {
  const header = [
    'scenario',
    'conns',
    'ours/s',
    'ref/s',
    'ratio',
    'ours p50',
    'ours p99',
    'ref p50',
    'ref p99',
    'p99×',
    'err o/r',
    'cpu s/1k o',
    '+pg s/1k',
    'cpu s/1k r',
    'ops/cpu-s o',
    'o+pg',
    'ops/cpu-s r',
    'q/op',
    'target',
  ];
  const body = rows.map((r) => [
    r.scenario,
    String(r.connections),
    fmt(r.ours.opsPerSecond),
    fmt(r.reference?.opsPerSecond ?? null),
    fmt(r.throughputRatio, 2),
    fmt(r.ours.p50Ms),
    fmt(r.ours.p99Ms),
    fmt(r.reference?.p50Ms ?? null),
    fmt(r.reference?.p99Ms ?? null),
    fmt(r.p99Ratio, 2),
    `${r.ours.errors}/${r.reference?.errors ?? '-'}`,
    fmt(r.ours.cpuSecondsPer1000, 2),
    fmt(r.ours.pgCpuSecondsPer1000, 2),
    fmt(r.reference?.cpuSecondsPer1000 ?? null, 2),
    fmt(r.ours.opsPerCpuSecond, 0),
    fmt(r.ours.opsPerCpuSecondWithPostgres, 0),
    fmt(r.reference?.opsPerCpuSecond ?? null, 0),
    fmt(r.ours.queriesPerOp, 1),
    verdict(r),
  ]);
  return [header, ...body]
    .map((cells) => `| ${cells.join(' | ')} |`)
    .flatMap((line, i) => (i === 0 ? [line, line.replace(/[^|]/g, '-')] : [line]));
}

function verdict(row: Row): string {
  const misses = [
    row.met.throughput === false ? `ratio<${row.minRatio}` : '',
    row.met.errors ? '' : 'errors',
    row.met.p99 ? '' : 'p99>1.5×',
  ].filter(Boolean);
  if (row.minRatio === undefined && misses.length === 0) return 'n/a';
  return misses.length ? `MISS ${misses.join(',')}` : 'met';
}

/** Other work on the machine skews every number: record the 1-minute load average. */
const loadAverage = () => Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);

async function main(): Promise<void> {
  const started = new Date();
  const loadBefore = loadAverage();
  process.stdout.write(
    `bench: ${settings.rounds} rounds × ${settings.seconds} s per server, connections ${settings.connections.join('/')}\n`,
  );
  const floors: Floors = await measureFloors();
  process.stdout.write(
    `floors: argon2id verify ${floors.argon2VerifyMs.toFixed(1)} ms (${floors.argon2VerifiesPerSecond.toFixed(0)}/s on all cores), ` +
      `RS256 sign ${floors.rs256SignMs.toFixed(3)} ms, ES256 sign ${floors.es256SignMs.toFixed(3)} ms\n`,
  );

  const database = await createBenchDatabase();
  const servers: ServerProcess[] = [];
  const admin = new pg.Client({ connectionString: database.url });
  const cleanup = async () => {
    await Promise.allSettled(servers.map((server) => server.stop()));
    await admin.end().catch(() => undefined);
    await database.drop();
  };
  process.once('SIGINT', () => void cleanup().finally(() => process.exit(130)));
  try {
    const maxConnections = Math.max(...settings.connections);
    const both = await startBothServers(database, servers, {
      accounts: maxConnections,
      totp: Number(process.env['BENCH_TOTP_ACCOUNTS'] ?? 1500),
      passkey: maxConnections,
    });
    const { ours, reference } = both;
    ({ fixtures, strong } = both);
    await admin.connect();

    const targets: Target[] = [
      { name: 'ours', server: ours, postgres: { client: admin, database: database.name }, users: [], appUsers: [], pools: new Map() },
      { name: 'reference', server: reference, users: [], appUsers: [], pools: new Map() },
    ];
    for (const target of targets) {
      target.users = await prepareUsers(target.server.origin, fixtures.web, fixtures.accounts, maxConnections, ssoScope);
      target.appUsers = await prepareUsers(target.server.origin, fixtures.app, fixtures.accounts, maxConnections, ssoScope);
    }

    const rows: Row[] = [];
    process.stdout.write(`${tableLines([]).join('\n')}\n`);
    for (const scenario of scenarios.filter((s) => !settings.only || settings.only.includes(s.name))) {
      const measured = scenario.oursOnly ? targets.filter((target) => target.name === 'ours') : targets;
      for (const connections of settings.connections) {
        const samples: Record<Target['name'], RunSample[]> = { ours: [], reference: [] };
        for (const target of measured) {
          const http = poolFor(target, connections);
          await measure(target, connections, settings.warmupSeconds, (w) => scenario.run(target, http, w));
        }
        for (let round = 0; round < settings.rounds; round += 1) {
          // A B, B A, A B …: neither server always runs first (warmer caches, thermal drift).
          for (const target of round % 2 === 0 ? measured : [...measured].reverse()) {
            const http = poolFor(target, connections);
            samples[target.name].push(await measure(target, connections, settings.seconds, (w) => scenario.run(target, http, w)));
          }
        }
        const o = summarize(samples.ours);
        const r = scenario.oursOnly ? null : summarize(samples.reference);
        const row: Row = {
          scenario: scenario.name,
          connections,
          ours: o,
          reference: r,
          samples,
          throughputRatio: r ? o.opsPerSecond / r.opsPerSecond : Number.NaN,
          p99Ratio: r ? o.p99Ms / r.p99Ms : Number.NaN,
          minRatio: scenario.minRatio,
          met: {
            throughput: scenario.minRatio === undefined || !r ? null : o.opsPerSecond / r.opsPerSecond >= scenario.minRatio,
            errors: o.errors === 0 && (r?.errors ?? 0) === 0,
            p99: !r || o.p99Ms <= 1.5 * r.p99Ms,
          },
        };
        rows.push(row);
        process.stdout.write(`${tableLines([row])[2]}\n`);
        if (o.firstError || r?.firstError)
          process.stdout.write(`  first errors: ours=${o.firstError ?? '-'} reference=${r?.firstError ?? '-'}\n`);
      }
    }
    for (const target of targets) for (const http of target.pools.values()) await http.close();

    const rss = { ours: peakRssBytes(ours.pid), reference: peakRssBytes(reference.pid) };
    const load = { before: loadBefore, after: loadAverage() };
    const minutes = ((Date.now() - started.getTime()) / 60000).toFixed(1);
    const lines = [
      `date: ${started.toISOString()}; machine: ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${mib(totalmem())} MiB, Node ${process.version}; ` +
        `LOG_LEVEL=warn on both; ${settings.rounds} interleaved rounds × ${settings.seconds} s per server (medians); ` +
        `load average ${load.before} before, ${load.after} after; ${minutes} min`,
      `floors: argon2id verify ${floors.argon2VerifyMs.toFixed(1)} ms single, ${floors.argon2VerifiesPerSecond.toFixed(0)} verifies/s all cores; ` +
        `RS256 sign ${floors.rs256SignMs.toFixed(3)} ms; ES256 sign ${floors.es256SignMs.toFixed(3)} ms`,
      `peak RSS (VmHWM): ours ${mib(rss.ours)} MiB, reference ${mib(rss.reference)} MiB, ratio ${(rss.ours / rss.reference).toFixed(2)} ` +
        `(target ≤ 1.2: ${rss.ours <= 1.2 * rss.reference ? 'met' : 'MISS'})`,
      '',
      ...tableLines(rows),
      '',
      'p50/p99 in ms; "cpu s/1k" = CPU seconds per 1000 operations of the server process (o = ours, r = reference), "+pg" = our Postgres backends;',
      '"ops/cpu-s" = operations per CPU-second (o+pg counts Postgres too); q/op = statements ours sends to Postgres per operation.',
    ];
    process.stdout.write(`\n${lines.join('\n')}\n`);
    const report = {
      date: started.toISOString(),
      settings,
      load,
      machine: { cpus: cpus().length, model: cpus()[0]?.model, memoryBytes: totalmem(), node: process.version },
      floors,
      peakRss: rss,
      rows,
    };
    const stamp = started.toISOString().replace(/[:.]/g, '-');
    writeFileSync(join(outDir, `bench-${stamp}.json`), JSON.stringify(report, null, 2));
    writeFileSync(join(outDir, 'latest.json'), JSON.stringify(report, null, 2));
    writeFileSync(join(outDir, 'latest.md'), `${lines.join('\n')}\n`);
    process.stdout.write(`\nwrote bench/out/bench-${stamp}.json, bench/out/latest.json and bench/out/latest.md\n`);
  } finally {
    await cleanup();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
