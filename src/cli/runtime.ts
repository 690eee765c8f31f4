import { loadConfig, type Config } from '../config.js';
import { openDatabase, type Database } from '../db/index.js';
import { migrate } from '../db/migrate.js';
import { providerPages } from '../http/pages.js';
import { createLogger, type Logger } from '../logger.js';
import type { MetadataValidator } from '../clients/store.js';

export interface CliRuntime {
  config: Config;
  logger: Logger;
  db: Database;
  /** oidc-provider's client validation, built on first use (it loads keys). */
  clientValidator(): Promise<MetadataValidator>;
}

/** Opens what a command needs: config, a stderr logger, the migrated database. */
export async function openCliRuntime(options: { migrate: boolean }): Promise<CliRuntime> {
  const config = loadConfig();
  // stdout is for results; logs go to stderr and only when they matter.
  const level = config.logLevel === 'info' ? 'warn' : config.logLevel;
  const logger = createLogger({ logLevel: level }, process.stderr);
  const db = await openDatabase(config, logger);
  try {
    if (options.migrate) await migrate(db, logger);
  } catch (error) {
    await db.close();
    throw error;
  }
  let validator: MetadataValidator | undefined;
  return {
    config,
    logger,
    db,
    async clientValidator() {
      if (!validator) {
        const { buildProvider, clientMetadataValidator } = await import('../oidc/provider.js');
        const { provider } = await buildProvider(config, db, logger, providerPages);
        validator = clientMetadataValidator(provider);
      }
      return validator;
    },
  };
}
