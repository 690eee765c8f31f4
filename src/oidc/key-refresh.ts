import type Koa from 'koa';
import type Provider from 'oidc-provider';
import type { Config } from '../config.js';
import type { Database } from '../db/index.js';
import type { Logger } from '../logger.js';
import { replaceSigningKeys } from './internals.js';
import { loadSigningKeys } from './keys.js';
import { cookieSignatures } from '../security/cookie-signatures.js';
import { loadServerSecrets } from './secrets.js';

export interface KeyRefresh {
  /** Reads the keys now and applies what changed (also runs every KEY_REFRESH_SECONDS). */
  refresh(): Promise<void>;
  stop(): void;
}

/**
 * Keeps a running instance's signing and cookie keys as the database says they are: a key
 * `idp keys rotate` adds is published, then signs at its activation time, and a retired or
 * withdrawn one leaves the JWKS, on every instance, within KEY_REFRESH_SECONDS and without a
 * restart. Keys are re-read on a timer rather than on a notification because activation is a
 * moment in time, not a change any statement makes. The order of kids decides what signs, so
 * only a changed order (or set) replaces the keystore.
 */
export function startKeyRefresh(
  deps: { db: Database; config: Config; logger: Logger; provider: Provider; app: Koa },
  initial: { signingKids: string[]; cookieKeys: string[] },
): KeyRefresh {
  let signingKids = initial.signingKids.join(' ');
  let cookieKeys = initial.cookieKeys.join(' ');
  let running: Promise<void> | undefined;

  async function readAndApply(): Promise<void> {
    const [jwks, secrets] = await Promise.all([loadSigningKeys(deps.db, { config: deps.config }), loadServerSecrets(deps.db, deps.config)]);
    const kids = jwks.keys.map((key) => String(key.kid)).join(' ');
    if (kids !== signingKids) {
      replaceSigningKeys(deps.provider, jwks);
      deps.logger.info({ kids: kids.split(' ') }, 'signing keys changed; now publishing and signing with these');
      signingKids = kids;
    }
    if (secrets.cookieKeys.join(' ') !== cookieKeys) {
      // The outer app signs the cookies (the provider is mounted in it); both get the new list.
      deps.app.keys = cookieSignatures(secrets.cookieKeys);
      deps.provider.keys = secrets.cookieKeys;
      deps.logger.info({ keys: secrets.cookieKeys.length }, 'cookie keys changed');
      cookieKeys = secrets.cookieKeys.join(' ');
    }
  }

  const refresh = () => {
    running ??= readAndApply().finally(() => {
      running = undefined;
    });
    return running;
  };
  const timer = setInterval(() => {
    refresh().catch((error: Error) => deps.logger.warn({ err: error.message }, 'could not re-read the keys; will retry'));
  }, deps.config.keyRefreshSeconds * 1000);
  timer.unref();
  return { refresh, stop: () => clearInterval(timer) };
}
