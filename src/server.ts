import { createServer } from 'node:http';
import { loadConfig, type Config } from './config.js';
import { openDatabase } from './db/index.js';
import { migrate } from './db/migrate.js';
import { demoAccount, seedDemo } from './demo.js';
import { createApp } from './http/app.js';
import { startMetricsServer } from './http/health.js';
import { createLogger } from './logger.js';
import { clientMetadataValidator } from './oidc/provider.js';
import { startExpiredRowSweeper } from './oidc/sweeper.js';

async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n`);
    process.exit(2);
  }
  const logger = createLogger(config);
  const db = await openDatabase(config, logger);
  await migrate(db, logger);
  const { app, provider, logoutDeliveries, eventDeliveries, mailDeliveries, keyRefresh } = await createApp(config, db, logger);
  const stopSweeper = startExpiredRowSweeper(db, logger, {
    intervalSeconds: config.sweepIntervalSeconds,
    batchSize: config.sweepBatchSize,
    auditRetentionDays: config.auditRetentionDays,
  });

  const metricsServer = await startMetricsServer(config, logger);
  const server = createServer(app.callback());
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve) => server.listen(config.port, config.host, resolve));
  logger.info(
    { issuer: config.issuer, database: db.description, discovery: `${config.issuer}/.well-known/openid-configuration` },
    `identity provider ready at ${config.issuer}; register a service with: npx idp clients add --name <name> --redirect-uri <https://service/callback>`,
  );

  if (process.argv.includes('--seed-demo')) {
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
    await db.close();
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
