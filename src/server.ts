import cluster from 'node:cluster';
import { createServer } from 'node:http';
import { AggregatorRegistry } from 'prom-client';
import { loadConfig, type Config } from './config.js';
import { openDatabase, type Database } from './db/index.js';
import { migrate } from './db/migrate.js';
import { demoAccount, seedDemo } from './demo.js';
import { createApp } from './http/app.js';
import { startMetricsServer } from './http/health.js';
import { registry } from './http/metrics.js';
import { createLogger, type Logger } from './logger.js';
import { clientMetadataValidator } from './oidc/provider.js';
import { startTracing } from './telemetry.js';
import { startExpiredRowSweeper } from './oidc/sweeper.js';

/**
 * `npm start`. With WEB_CONCURRENCY=1 (the default) this process does everything. With more,
 * it becomes the primary of that many worker processes sharing the port (node:cluster): it
 * opens the database first (the embedded one is then served by it to the workers), applies
 * the migrations, runs the sweeper, serves the metrics of all workers on METRICS_PORT, and
 * restarts a worker that dies; each worker serves requests and runs the delivery workers
 * (which claim rows with SKIP LOCKED, so each item is sent once). SIGTERM drains every worker.
 */
/** Flushes the spans still buffered (telemetry.ts); replaced once tracing has started. */
let stopTracing: () => Promise<void> = async () => undefined;

async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n`);
    process.exit(2);
  }
  const logger = createLogger(config);
  stopTracing = startTracing(config).shutdown;
  if (cluster.isWorker) return serve(config, logger, { worker: true });
  const db = await openDatabase(config, logger);
  await migrate(db, logger);
  if (config.webConcurrency > 1) return runPrimary(config, logger, db);
  return serve(config, logger, { worker: false, db });
}

function startSweeper(config: Config, db: Database, logger: Logger): () => void {
  return startExpiredRowSweeper(db, logger, {
    intervalSeconds: config.sweepIntervalSeconds,
    batchSize: config.sweepBatchSize,
    auditRetentionDays: config.auditRetentionDays,
  });
}

async function runPrimary(config: Config, logger: Logger, db: Database): Promise<void> {
  const stopSweeper = startSweeper(config, db, logger);
  const aggregator = new AggregatorRegistry();
  const metricsServer = await startMetricsServer(config, logger, () => aggregator.clusterMetrics());
  let stopping = false;
  cluster.on('exit', (worker, code, signal) => {
    if (stopping) return;
    logger.error({ pid: worker.process.pid, code, signal }, 'a worker process stopped; starting another');
    cluster.fork();
  });
  for (let i = 0; i < config.webConcurrency; i += 1) cluster.fork();
  logger.info({ workers: config.webConcurrency, issuer: config.issuer }, 'identity provider starting its worker processes');

  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down: every worker finishes its in-flight requests');
    stopSweeper();
    const workers = Object.values(cluster.workers ?? {}).filter((worker) => worker !== undefined);
    const exited = workers.map((worker) => new Promise<void>((resolve) => worker.once('exit', () => resolve())));
    for (const worker of workers) worker.process.kill('SIGTERM');
    const force = setTimeout(() => workers.forEach((worker) => worker.process.kill('SIGKILL')), (config.shutdownTimeoutSeconds + 5) * 1000);
    force.unref();
    await Promise.all(exited);
    metricsServer?.close();
    await db.close();
    await stopTracing().catch(() => undefined);
    logger.info('stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

async function serve(config: Config, logger: Logger, role: { worker: true } | { worker: false; db: Database }): Promise<void> {
  // A worker reaches the database the primary prepared (for the embedded one, its server).
  const db = role.worker ? await openDatabase(config, logger) : role.db;
  const { app, provider, logoutDeliveries, eventDeliveries, mailDeliveries, keyRefresh, changeNotices } = await createApp(
    config,
    db,
    logger,
  );
  // The primary sweeps and serves the metrics of a cluster; a worker answers its requests for them.
  if (role.worker) {
    // prom-client answers the primary's requests from a worker once an aggregator exists there.
    void new AggregatorRegistry();
    AggregatorRegistry.setRegistries([registry]);
  }
  const stopSweeper = role.worker ? () => undefined : startSweeper(config, db, logger);
  const metricsServer = role.worker ? undefined : await startMetricsServer(config, logger);

  const server = createServer(app.callback());
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve) => server.listen(config.port, config.host, resolve));
  if (!role.worker || cluster.worker?.id === 1) {
    logger.info(
      { issuer: config.issuer, database: db.description, discovery: `${config.issuer}/.well-known/openid-configuration` },
      `identity provider ready at ${config.issuer}; register a service with: npx idp clients add --name <name> --redirect-uri <https://service/callback>`,
    );
  }

  if (process.argv.includes('--seed-demo') && !role.worker) {
    const { client } = await seedDemo(db, clientMetadataValidator(provider));
    // Printed to stdout, not the log: a demo secret is meant to be read by the developer.
    process.stdout.write(
      [
        '',
        `Demo account: ${demoAccount.email} / ${demoAccount.password}`,
        client
          ? `Demo client: client_id=${client.client.clientId} client_secret=${client.clientSecret} redirect_uri=${client.client.redirectUris[0]}`
          : 'Demo client: already registered (npx idp clients list)',
        '',
      ].join('\n'),
    );
  }

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down: finishing in-flight requests');
    stopSweeper();
    keyRefresh.stop();
    const forceClose = setTimeout(() => server.closeAllConnections(), config.shutdownTimeoutSeconds * 1000);
    forceClose.unref();
    server.closeIdleConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    metricsServer?.close();
    await logoutDeliveries.stop();
    await eventDeliveries.stop();
    await mailDeliveries.stop();
    await changeNotices.stop();
    await db.close();
    await stopTracing().catch(() => undefined);
    logger.info('stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

main().catch((error: unknown) => {
  process.stderr.write(`start-up failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
