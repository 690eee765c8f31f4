import type Provider from 'oidc-provider';
import type { Config } from '../config.js';
import type { Database } from '../db/index.js';
import type { Logger } from '../logger.js';
import type { Mailer } from '../mail/mailer.js';
import type { Throttle } from '../security/throttle.js';

/**
 * What the account workflows need, passed explicitly by each door that runs them: the hosted
 * pages (http/) and the admin CLI (cli/) build the same set.
 */
export interface WorkflowDeps {
  config: Config;
  db: Database;
  provider: Provider;
  throttle: Throttle;
  mailer: Mailer;
  logger: Logger;
}

/** Who asked for a change: the person on their own account, or an administrator. */
export type Actor = { kind: 'self'; ip: string | null } | { kind: 'admin' };

/** The audit log's actor and IP for an Actor (an administrator has no IP: the CLI runs on the server). */
export function auditActor(actor: Actor, accountId: string): { actor: string; accountId: string; ip: string | null } {
  return actor.kind === 'self' ? { actor: accountId, accountId, ip: actor.ip } : { actor: 'admin', accountId, ip: null };
}
