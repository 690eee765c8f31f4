import { randomBytes } from 'node:crypto';
import type { Config } from '../config.js';
import type { Queryable } from '../db/index.js';

/**
 * Returns a named secret, generating and storing it on first use. INSERT .. ON CONFLICT
 * makes concurrent first starts agree on one value.
 */
async function storedSecret(db: Queryable, name: string, generate: () => string): Promise<string> {
  await db.query('INSERT INTO server_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING', [name, generate()]);
  const { rows } = await db.query<{ value: string }>('SELECT value FROM server_secrets WHERE name = $1', [name]);
  return rows[0]!.value;
}

const randomSecret = () => randomBytes(32).toString('base64url');

export interface ServerSecrets {
  cookieKeys: string[];
  pairwiseSalt: string;
}

/** Secrets from the environment when set; otherwise generated once and kept in the database. */
export async function loadServerSecrets(db: Queryable, config: Config): Promise<ServerSecrets> {
  const cookieKeys = config.cookieKeys ? [...config.cookieKeys] : [await storedSecret(db, 'cookie_key', randomSecret)];
  const pairwiseSalt = config.pairwiseSalt ?? (await storedSecret(db, 'pairwise_salt', randomSecret));
  return { cookieKeys, pairwiseSalt };
}
