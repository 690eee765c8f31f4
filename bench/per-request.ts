/**
 * `npm run bench:per-request`: where each flow's CPU goes, request by request. One request at
 * a time (no contention, so nothing preempts the measured thread), against ours and the
 * reference on the same fixtures. Around each request it reads the server's main thread
 * (/proc/<pid>/task/<pid>/schedstat, nanoseconds on CPU) and, for ours, the Postgres
 * backends of the bench database; argon2's pool threads are left out, so a password
 * sign-in's figure is the work around the hash.
 *
 * Env: PER_REQUEST_ITERATIONS (per flow, default 200), PER_REQUEST_FLOWS (comma list,
 * default all), BENCH_OURS_DIR / BENCH_OURS_ENV as for `npm run bench`.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import type { Fixtures, StrongAccounts } from './lib/fixtures.js';
import { authorize, clientCredentials, CookieJar, introspect, refresh, secondStepSignIn, ssoFlow, userinfo } from './lib/flows.js';
import { Http, type Reply } from './lib/http.js';
import { prepareUsers, type User } from './lib/users.js';
import { startBothServers } from './lib/both-servers.js';
import { createBenchDatabase, outDir, type ServerProcess } from './lib/servers.js';
import { Secret, TOTP } from 'otpauth';

const iterations = Number(process.env['PER_REQUEST_ITERATIONS'] ?? 200);
const onlyFlows = process.env['PER_REQUEST_FLOWS']?.split(',');
const ssoScope = 'openid profile email';

/** Nanoseconds one thread has run, from its schedstat (field 1). */
function threadNanoseconds(pid: number, tid = pid): number {
  try {
    return Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
  } catch {
    return 0;
  }
}

/** A step's name: the method and the path with ids and query left out. */
function stepName(method: string, url: string): string {
  const path = new URL(url, 'http://x').pathname
    .split('/')
    .map((segment) => (segment.length >= 16 ? ':id' : segment))
    .join('/');
  return `${method} ${path}`;
}

interface StepCost {
  count: number;
  nodeNs: number;
  postgresNs: number;
}

/** An Http that charges each request's server CPU to its step. */
class MeteredHttp extends Http {
  readonly steps = new Map<string, StepCost>();
  backendPids: number[] = [];
  private metering = false;

  constructor(
    origin: string,
    private readonly serverPid: number,
  ) {
    super(origin, 1);
  }

  start(): void {
    this.steps.clear();
    this.metering = true;
  }

  stop(): void {
    this.metering = false;
  }

  private postgresNanoseconds(): number {
    let total = 0;
    for (const pid of this.backendPids) total += threadNanoseconds(pid);
    return total;
  }

  override async request(...args: Parameters<Http['request']>): Promise<Reply> {
    if (!this.metering) return super.request(...args);
    const node = threadNanoseconds(this.serverPid);
    const postgres = this.postgresNanoseconds();
    const reply = await super.request(...args);
    const name = stepName(args[0], args[1]);
    const step = this.steps.get(name) ?? { count: 0, nodeNs: 0, postgresNs: 0 };
    step.count += 1;
    step.nodeNs += threadNanoseconds(this.serverPid) - node;
    step.postgresNs += this.postgresNanoseconds() - postgres;
    this.steps.set(name, step);
    return reply;
  }
}

interface Flow {
  name: string;
  oursOnly?: boolean;
  run(http: MeteredHttp, target: Target, i: number): Promise<unknown>;
}

interface Target {
  name: 'ours' | 'reference';
  server: ServerProcess;
  users: User[];
  appUsers: User[];
}

let fixtures: Fixtures;
let strong: StrongAccounts;
let totpSignIns = 0;

const flows: Flow[] = [
  { name: 'client_credentials', run: (http) => clientCredentials(http, fixtures.machine) },
  { name: 'sso_code_flow', run: (http, t, i) => ssoFlow(http, t.users[i % t.users.length]!.jar, fixtures.web, ssoScope) },
  {
    name: 'password_sign_in',
    run: (http, _t, i) =>
      authorize(http, new CookieJar(), fixtures.firstParty, fixtures.accounts[i % fixtures.accounts.length]!, 'openid profile'),
  },
  {
    name: 'refresh_rotation',
    run: async (http, t, i) => {
      const user = t.appUsers[i % t.appUsers.length]!;
      user.refreshToken = (await refresh(http, fixtures.app, user.refreshToken)).refreshToken!;
    },
  },
  { name: 'userinfo', run: (http, t, i) => userinfo(http, t.users[i % t.users.length]!.accessToken) },
  { name: 'introspection', run: (http, t, i) => introspect(http, fixtures.web, t.users[i % t.users.length]!.accessToken) },
  {
    name: 'totp_sign_in',
    oursOnly: true,
    run: (http) => {
      // Each account once: a code is accepted once per step.
      const account = strong.totp[totpSignIns++ % strong.totp.length]!;
      const code = TOTP.generate({ secret: Secret.fromBase32(account.secret) });
      return secondStepSignIn(http, new CookieJar(), fixtures.firstParty, account, code, 'openid profile');
    },
  },
];

async function backendPids(admin: pg.Client, database: string): Promise<number[]> {
  const { rows } = await admin.query<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE datname = $1 AND application_name = 'idp'", [
    database,
  ]);
  return rows.map((row) => row.pid);
}

const ms = (ns: number, count: number) => (ns / count / 1e6).toFixed(3);

async function main(): Promise<void> {
  const database = await createBenchDatabase();
  const servers: ServerProcess[] = [];
  const admin = new pg.Client({ connectionString: database.url });
  try {
    const both = await startBothServers(database, servers, { accounts: 20, totp: iterations + 20, passkey: 1 });
    const { ours, reference } = both;
    ({ fixtures, strong } = both);
    await admin.connect();
    const targets: Target[] = [];
    for (const server of [ours, reference]) {
      targets.push({
        name: server.name,
        server,
        users: await prepareUsers(server.origin, fixtures.web, fixtures.accounts, 20, ssoScope),
        appUsers: await prepareUsers(server.origin, fixtures.app, fixtures.accounts, 20, ssoScope),
      });
    }
    const lines = ['| flow | step | ours node ms | ours pg ms | ref node ms | ours node / ref |', '|---|---|---|---|---|---|'];
    for (const flow of flows.filter((f) => !onlyFlows || onlyFlows.includes(f.name))) {
      const results = new Map<string, Map<string, StepCost>>();
      for (const target of targets.filter((t) => !flow.oursOnly || t.name === 'ours')) {
        const http = new MeteredHttp(target.server.origin, target.server.pid);
        for (let i = 0; i < 20; i += 1) await flow.run(http, target, i); // warm-up
        http.backendPids = target.name === 'ours' ? await backendPids(admin, database.name) : [];
        http.start();
        for (let i = 0; i < iterations; i += 1) await flow.run(http, target, i + 20);
        http.stop();
        results.set(target.name, new Map(http.steps));
        await http.close();
      }
      const total = (name: string, field: 'nodeNs' | 'postgresNs') =>
        [...(results.get(name)?.values() ?? [])].reduce((sum, step) => sum + step[field], 0) / iterations / 1e6;
      for (const [step, cost] of results.get('ours')!) {
        const reference = results.get('reference')?.get(step);
        lines.push(
          `| ${flow.name} | ${step} | ${ms(cost.nodeNs, cost.count)} | ${ms(cost.postgresNs, cost.count)} | ` +
            `${reference ? ms(reference.nodeNs, reference.count) : '-'} | ` +
            `${reference ? (cost.nodeNs / cost.count / (reference.nodeNs / reference.count)).toFixed(2) : '-'} |`,
        );
      }
      const oursNode = total('ours', 'nodeNs');
      const refNode = results.has('reference') ? total('reference', 'nodeNs') : Number.NaN;
      lines.push(
        `| ${flow.name} | **whole flow** | **${oursNode.toFixed(3)}** | **${total('ours', 'postgresNs').toFixed(3)}** | ` +
          `**${Number.isNaN(refNode) ? '-' : refNode.toFixed(3)}** | ${Number.isNaN(refNode) ? '-' : (oursNode / refNode).toFixed(2)} |`,
      );
      process.stdout.write(`${lines.slice(-results.get('ours')!.size - 1).join('\n')}\n`);
    }
    const report = `per request, ${iterations} sequential iterations per flow, ${new Date().toISOString()}\n\n${lines.join('\n')}\n`;
    writeFileSync(join(outDir, 'per-request.md'), report);
    process.stdout.write(`\n${report}\nwrote bench/out/per-request.md\n`);
  } finally {
    await Promise.allSettled(servers.map((server) => server.stop()));
    await admin.end().catch(() => undefined);
    await database.drop();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`per-request failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
