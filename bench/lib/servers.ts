import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';

/** The repository root: the nearest directory above this file with a package.json and migrations/. */
export const root = (() => {
  let dir = dirname(new URL(import.meta.url).pathname);
  while (!(existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'migrations')))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error('repository root not found');
    dir = parent;
  }
  return dir;
})();

export const outDir = join(root, 'bench', 'out');
mkdirSync(outDir, { recursive: true });

const adminUrl = process.env['DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export interface BenchDatabase {
  name: string;
  url: string;
  drop(): Promise<void>;
}

/** A fresh database idp_bench_<random> on DATABASE_URL's server (default the local one), dropped by drop(). */
export async function createBenchDatabase(): Promise<BenchDatabase> {
  const name = `idp_bench_${Date.now()}_${randomBytes(3).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    name,
    url: url.toString(),
    async drop() {
      const client = new pg.Client({ connectionString: adminUrl });
      await client.connect();
      await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await client.end();
    },
  };
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export interface ServerProcess {
  name: 'ours' | 'reference';
  origin: string;
  /** The issuer it answers as (ours: localhost, so passkeys are offered). */
  issuer: string;
  pid: number;
  stop(): Promise<void>;
  /** kill -9: the process dies mid-request, as in a crash or an OOM kill. */
  crash(): Promise<void>;
}

async function waitUntilReady(origin: string, child: ChildProcess, name: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${name} exited with code ${child.exitCode}; see bench/out/${name}.log`);
    try {
      const response = await fetch(`${origin}/.well-known/openid-configuration`);
      await response.arrayBuffer();
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    await sleep(200);
  }
  throw new Error(`${name} did not become ready within 60 s`);
}

/**
 * Runs a server as a child process (so its CPU and RSS can be read from /proc) with its
 * output in bench/out/<name>.log. With BENCH_CPU_PROF=1 it writes a .cpuprofile on exit.
 */
async function startChild(
  name: ServerProcess['name'],
  script: string,
  port: number,
  env: Record<string, string>,
  label: string = name,
): Promise<ServerProcess> {
  const profile =
    process.env['BENCH_CPU_PROF'] === '1'
      ? ['--cpu-prof', `--cpu-prof-dir=${join(outDir, 'profiles')}`, `--cpu-prof-name=${label}-${Date.now()}.cpuprofile`]
      : [];
  const log = createWriteStream(join(outDir, `${label}.log`));
  const child = spawn(process.execPath, [...profile, script], {
    cwd: dirname(dirname(script)),
    env: { PATH: process.env['PATH'] ?? '', NODE_ENV: 'production', PORT: String(port), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.pipe(log);
  child.stderr.pipe(log);
  const origin = `http://127.0.0.1:${port}`;
  try {
    await waitUntilReady(origin, child, label);
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
  return {
    name,
    origin,
    issuer: env['ISSUER'] ?? origin,
    pid: child.pid!,
    async crash() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await Promise.race([exited, sleep(15_000)]);
      if (child.exitCode === null) child.kill('SIGKILL');
    },
  };
}

/** Our server's /metrics needs a bearer token (METRICS_TOKEN); the bench reads its query counter there. */
export const benchMetricsToken = 'bench-metrics-token-0123456789abcdef';

/**
 * Our server, built (`npm run build`), on the bench database, with rate limits out of the
 * way and LOG_LEVEL=warn. BENCH_OURS_DIR points at another built checkout (to measure a
 * change); BENCH_OURS_ENV adds settings ("DATABASE_POOL_MAX=20 …").
 */
export async function startOurs(databaseUrl: string, extraEnv: Record<string, string> = {}, label = 'ours'): Promise<ServerProcess> {
  const port = await freePort();
  const checkout = process.env['BENCH_OURS_DIR'] ?? root;
  return startChild(
    'ours',
    join(checkout, 'dist', 'server.js'),
    port,
    {
      DATABASE_URL: databaseUrl,
      HOST: '127.0.0.1',
      // A host name, as in production: passkeys are offered (WebAuthn refuses IP addresses).
      ISSUER: `http://localhost:${port}`,
      LOG_LEVEL: 'warn',
      LOGIN_MAX_FAILURES_PER_IP: '100000000',
      LOGIN_MAX_FAILURES_PER_ACCOUNT: '100000000',
      SECOND_STEP_FAILURES_PER_ACCOUNT: '100000000',
      METRICS_TOKEN: benchMetricsToken,
      REGISTRATIONS_PER_IP_PER_HOUR: '100000000',
      TOKEN_FAILURES_PER_IP_PER_MINUTE: '100000000',
      SIGN_INS_PER_ACCOUNT_PER_MINUTE: '100000000',
      SIGN_INS_PER_IP_PER_MINUTE: '100000000',
      MAIL_PER_RECIPIENT_PER_REQUESTER_PER_HOUR: '100000000',
      MAIL_PER_RECIPIENT_PER_HOUR: '100000000',
      // e.g. BENCH_OURS_ENV="DATABASE_POOL_MAX=20" to measure a setting
      ...Object.fromEntries(
        (process.env['BENCH_OURS_ENV'] ?? '')
          .split(/\s+/)
          .filter(Boolean)
          // at the first "=": a value may hold one (NODE_OPTIONS=--heapsnapshot-signal=SIGUSR2)
          .map((pair) => [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)]),
      ),
      ...extraEnv,
    },
    label,
  );
}

/** The reference: oidc-provider + memory adapter (bench/reference-server.ts), fed the same fixtures. */
export async function startReference(fixturesPath: string): Promise<ServerProcess> {
  const port = await freePort();
  return startChild('reference', join(outDir, 'build', 'bench', 'reference-server.js'), port, {
    FIXTURES: fixturesPath,
    LOG_LEVEL: 'warn',
  });
}
