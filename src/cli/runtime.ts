import { loadConfig, type Config } from '../config.js';
import { openDatabase, type Database } from '../db/index.js';
import { migrate } from '../db/migrate.js';
import { providerPages } from '../http/pages.js';
import { createLogger, type Logger } from '../logger.js';
import type Provider from 'oidc-provider';
import type { MetadataValidator } from '../clients/store.js';
import { createMailer } from '../mail/mailer.js';
import { cachedKeyRing } from '../oidc/keys.js';
import { configurePasswordWork } from '../security/password-work.js';
import { Throttle } from '../security/throttle.js';
import type { WorkflowDeps } from '../use-cases/deps.js';

export interface CliRuntime {
  config: Config;
  logger: Logger;
  db: Database;
  /** oidc-provider's client validation, built on first use (it loads keys). */
  clientValidator(): Promise<MetadataValidator>;
  /** The oidc-provider instance, built on first use (it loads keys). */
  provider(): Promise<Provider>;
  /** What the account workflows need: the same set the server's pages pass them. */
  workflowDeps(): Promise<WorkflowDeps>;
}

/** Opens what a command needs: config, a stderr logger, the migrated database. */
export async function openCliRuntime(options: { migrate: boolean }): Promise<CliRuntime> {
  const config = loadConfig();
  // stdout is for results; logs go to stderr and only when they matter.
  const level = config.logLevel === 'info' ? 'warn' : config.logLevel;
  const logger = createLogger({ logLevel: level }, process.stderr);
  configurePasswordWork(config.passwordHashing);
  const db = await openDatabase(config, logger);
  try {
    if (options.migrate) await migrate(db, logger);
  } catch (error) {
    await db.close();
    throw error;
  }
  let validator: MetadataValidator | undefined;
  let provider: Provider | undefined;
  const loadProvider = async () => {
    if (!provider) {
      const { buildProvider } = await import('../oidc/provider.js');
      provider = (await buildProvider(config, db, logger, providerPages)).provider;
    }
    return provider;
  };
  return {
    config,
    logger,
    db,
    async clientValidator() {
      if (!validator) {
        const { clientMetadataValidator } = await import('../oidc/provider.js');
        validator = clientMetadataValidator(await loadProvider());
      }
      return validator;
    },
    provider: loadProvider,
    async workflowDeps() {
      return {
        config,
        db,
        logger,
        provider: await loadProvider(),
        throttle: new Throttle(db, config.rateLimits),
        mailer: createMailer(config, db, logger, cachedKeyRing(db, config)),
      };
    },
  };
}
