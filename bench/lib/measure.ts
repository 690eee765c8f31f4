import type pg from 'pg';
import { cpuSeconds, sampleRss } from './proc.js';
import { median, percentile, runLoad } from './load.js';
import { benchMetricsToken, type ServerProcess } from './servers.js';

/** One measured run of one scenario against one server. */
export interface RunSample {
  ops: number;
  opsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  firstError: string | undefined;
  /** Server process CPU (user + system) per 1000 operations. */
  cpuSecondsPer1000: number;
  /** Postgres backends' CPU per 1000 operations (ours only; null when Postgres is not on this machine). */
  pgCpuSecondsPer1000: number | null;
  /** Statements sent to Postgres per operation (ours only, from our /metrics). */
  queriesPerOp: number | null;
  peakRssBytes: number;
}

async function queryCount(origin: string): Promise<number> {
  const response = await fetch(`${origin}/metrics`, { headers: { authorization: `Bearer ${benchMetricsToken}` } });
  if (!response.ok) throw new Error(`our /metrics answered ${response.status}`);
  const text = await response.text();
  let total = 0;
  for (const line of text.split('\n')) if (line.startsWith('idp_db_query_duration_seconds_count')) total += Number(line.split(' ').pop());
  return total;
}

async function backendCpu(db: pg.Client, database: string): Promise<Map<number, number>> {
  const { rows } = await db.query<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE datname = $1 AND application_name = 'idp'", [
    database,
  ]);
  return new Map(rows.map((row) => [row.pid, cpuSeconds(row.pid)]));
}

export interface Observed {
  server: ServerProcess;
  /** For ours: a connection to read pg_stat_activity, and the bench database's name. */
  postgres?: { client: pg.Client; database: string };
}

/** Runs the load once against one server and reads its CPU, RSS, Postgres CPU and query count around it. */
export async function measure(
  target: Observed,
  concurrency: number,
  seconds: number,
  operation: (worker: number) => Promise<void>,
): Promise<RunSample> {
  const { server, postgres } = target;
  const queriesBefore = postgres ? await queryCount(server.origin) : 0;
  const pgBefore = postgres ? await backendCpu(postgres.client, postgres.database) : undefined;
  const cpuBefore = cpuSeconds(server.pid);
  const rss = sampleRss(server.pid);
  const result = await runLoad(concurrency, seconds, operation);
  const cpu = cpuSeconds(server.pid) - cpuBefore;
  const peakRssBytes = rss.stop();
  let pgCpu: number | null = null;
  if (postgres && pgBefore) {
    const after = await backendCpu(postgres.client, postgres.database);
    pgCpu = 0;
    for (const [pid, value] of after) pgCpu += value - (pgBefore.get(pid) ?? 0);
    if (!Number.isFinite(pgCpu)) pgCpu = null;
  }
  const queries = postgres ? (await queryCount(server.origin)) - queriesBefore : null;
  const sorted = result.latencies.sort((a, b) => a - b);
  const per1000 = (value: number) => (result.ops ? (value / result.ops) * 1000 : Number.NaN);
  return {
    ops: result.ops,
    opsPerSecond: result.ops / result.seconds,
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    errors: result.errors,
    firstError: result.firstError,
    cpuSecondsPer1000: per1000(cpu),
    pgCpuSecondsPer1000: pgCpu === null ? null : per1000(pgCpu),
    queriesPerOp: queries === null || !result.ops ? null : queries / result.ops,
    peakRssBytes,
  };
}

/** Medians over rounds (errors summed, RSS the highest). */
export interface Summary {
  rounds: number;
  opsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  firstError: string | undefined;
  cpuSecondsPer1000: number;
  pgCpuSecondsPer1000: number | null;
  queriesPerOp: number | null;
  peakRssBytes: number;
  /** Operations per CPU-second of the server process (and with its Postgres backends). */
  opsPerCpuSecond: number;
  opsPerCpuSecondWithPostgres: number | null;
}

export function summarize(samples: RunSample[]): Summary {
  const of = (pick: (sample: RunSample) => number) => median(samples.map(pick));
  const cpu = of((s) => s.cpuSecondsPer1000);
  const pgCpu = samples.every((s) => s.pgCpuSecondsPer1000 !== null) ? of((s) => s.pgCpuSecondsPer1000!) : null;
  const queries = samples.every((s) => s.queriesPerOp !== null) ? of((s) => s.queriesPerOp!) : null;
  return {
    rounds: samples.length,
    opsPerSecond: of((s) => s.opsPerSecond),
    p50Ms: of((s) => s.p50Ms),
    p99Ms: of((s) => s.p99Ms),
    errors: samples.reduce((sum, s) => sum + s.errors, 0),
    firstError: samples.find((s) => s.firstError)?.firstError,
    cpuSecondsPer1000: cpu,
    pgCpuSecondsPer1000: pgCpu,
    queriesPerOp: queries,
    peakRssBytes: Math.max(...samples.map((s) => s.peakRssBytes)),
    opsPerCpuSecond: 1000 / cpu,
    opsPerCpuSecondWithPostgres: pgCpu === null ? null : 1000 / (cpu + pgCpu),
  };
}
