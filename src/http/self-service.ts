import type Provider from 'oidc-provider';
import type { Config } from '../config.js';
import type { Database } from '../db/index.js';
import type { Logger } from '../logger.js';
import type { Mailer } from '../mail/mailer.js';
import type { Throttle } from '../security/throttle.js';

/** What the self-service pages (registration mail, links, password reset, /account) need. */
export interface SelfServiceDeps {
  config: Config;
  db: Database;
  provider: Provider;
  throttle: Throttle;
  mailer: Mailer;
  logger: Logger;
}
