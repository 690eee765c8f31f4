import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type Provider from 'oidc-provider';
import { inject } from 'vitest';
import { loadConfig, type Config } from '../../src/config.js';
import { createPostgresDatabase, type Database } from '../../src/db/index.js';
import { createApp } from '../../src/http/app.js';
import { createLogger } from '../../src/logger.js';
import { clientMetadataValidator } from '../../src/oidc/provider.js';
import type { MetadataValidator } from '../../src/clients/store.js';
import type { DeliveryWorker } from '../../src/oidc/backchannel.js';
import type { KeyRefresh } from '../../src/oidc/key-refresh.js';
import type { ChangeNotices } from '../../src/db/change-notices.js';

/** Settings every test server shares (also for tests that build the app themselves). */
export const testEnvironment = {
  ALLOW_PRIVATE_NETWORK_FETCH: 'true',
  // Every test signs in from 127.0.0.1, sharing counters; rate-limit tests lower these
  // and use X-Forwarded-For addresses of their own.
  LOGIN_MAX_FAILURES_PER_IP: '100000',
  REGISTRATIONS_PER_IP_PER_HOUR: '100000',
  TOKEN_FAILURES_PER_IP_PER_MINUTE: '100000',
  PASSWORD_RESETS_PER_IP_PER_HOUR: '100000',
  SIGN_INS_PER_IP_PER_MINUTE: '100000',
  // Tests sign one person in many times a minute; sign-in-limits.test.ts sets its own.
  SIGN_INS_PER_ACCOUNT_PER_MINUTE: '100000',
  // Every test server's delivery worker may pick up any queued logout delivery (they share
  // the database, as instances do): all give up on dead test services after 4 s.
  LOGOUT_DELIVERY_MAX_AGE_SECONDS: '4',
  // The same for security events to dead test receivers.
  EVENT_DELIVERY_MAX_AGE_SECONDS: '4',
} as const;

export interface TestServer {
  issuer: string;
  config: Config;
  db: Database;
  provider: Provider;
  logoutDeliveries: DeliveryWorker;
  eventDeliveries: DeliveryWorker;
  mailDeliveries: DeliveryWorker;
  keyRefresh: KeyRefresh;
  /** What this instance hears of changed rows (a test that edits a kept row by hand waits for it). */
  changeNotices: ChangeNotices;
  server: Server;
  validator: MetadataValidator;
  /** Every path template the app answers. */
  routePaths: string[];
  close(): Promise<void>;
}

export function testDatabase(): Database {
  return createPostgresDatabase(inject('databaseUrl'), { poolMax: 5, logger: createLogger({ logLevel: 'silent' }) });
}

/**
 * The real app on a real port of 127.0.0.1 over the run's database. The issuer is the
 * exact URL clients use: 127.0.0.1, or localhost for passkey tests (and then only that).
 */
export async function startTestServer(
  options: { env?: Record<string, string>; db?: Database; hostName?: 'localhost' } = {},
): Promise<TestServer> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  // WebAuthn needs a host name (not an IP) as relying-party id: passkey tests ask for localhost.
  const issuer = `http://${options.hostName ?? '127.0.0.1'}:${port}`;
  const config = loadConfig({
    DATABASE_URL: inject('databaseUrl'),
    PORT: String(port),
    ISSUER: issuer,
    LOG_LEVEL: 'silent',
    ...testEnvironment,
    ...options.env,
  });
  const logger = createLogger(config);
  const db = options.db ?? createPostgresDatabase(config.databaseUrl!, { poolMax: 5, logger });
  const { app, provider, logoutDeliveries, eventDeliveries, mailDeliveries, keyRefresh, changeNotices, routePaths } = await createApp(
    config,
    db,
    logger,
  );
  server.on('request', app.callback());
  return {
    issuer,
    config,
    db,
    provider,
    logoutDeliveries,
    eventDeliveries,
    mailDeliveries,
    keyRefresh,
    changeNotices,
    server,
    validator: clientMetadataValidator(provider),
    routePaths,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      keyRefresh.stop();
      await changeNotices.stop();
      await logoutDeliveries.stop();
      await eventDeliveries.stop();
      await mailDeliveries.stop();
      if (!options.db) await db.close();
    },
  };
}
