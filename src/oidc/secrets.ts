import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { Config } from '../config.js';
import type { Database, Queryable } from '../db/index.js';
import { InvalidInput } from '../errors.js';

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
  /** Newest active first: the first signs, every one verifies. */
  cookieKeys: string[];
  pairwiseSalt: string;
}

/** Secrets from the environment when set; otherwise generated once and kept in the database. */
export async function loadServerSecrets(db: Queryable, config: Config): Promise<ServerSecrets> {
  const cookieKeys = config.cookieKeys ? [...config.cookieKeys] : cookieKeysInSigningOrder(await readCookieKeys(db, { lock: false }));
  const pairwiseSalt = config.pairwiseSalt ?? (await storedSecret(db, 'pairwise_salt', randomSecret));
  return { cookieKeys, pairwiseSalt };
}

// --- Key-encryption key kept in the database (used only when KEY_ENCRYPTION_KEY is unset) ---

const STORED_KEK = 'key_encryption_key';

/** The database-held key-encryption key, generated on first use. */
export async function storedKeyEncryptionKey(db: Queryable): Promise<Buffer> {
  return Buffer.from(await storedSecret(db, STORED_KEK, randomSecret), 'base64url');
}

/** The database-held key-encryption key if one was ever generated (to decrypt rows written before KEY_ENCRYPTION_KEY was set). */
export async function findStoredKeyEncryptionKey(db: Queryable): Promise<Buffer | undefined> {
  const { rows } = await db.query<{ value: string }>('SELECT value FROM server_secrets WHERE name = $1', [STORED_KEK]);
  return rows[0] ? Buffer.from(rows[0].value, 'base64url') : undefined;
}

// --- Cookie keys kept in the database (used only when COOKIE_KEYS is unset) ---

/**
 * server_secrets 'cookie_keys' holds a JSON list of keys with their activation time. A key
 * is accepted from the moment an instance loads it and signs from activatesAt on, so after
 * a rotation every instance can be restarted to accept the new key before any signs with it.
 */
const storedCookieKeysSchema = z
  .array(z.object({ key: z.string().min(32), createdAt: z.coerce.date(), activatesAt: z.coerce.date() }))
  .min(1);
type StoredCookieKey = z.infer<typeof storedCookieKeysSchema>[number];

interface CookieKeyList {
  keys: StoredCookieKey[];
  /** The database's clock, shared by every instance. */
  now: Date;
}

/** Creates the list on first use, from the single key installs before rotation kept in 'cookie_key' when there is one. */
async function seedCookieKeys(db: Queryable): Promise<void> {
  const { rows } = await db.query<{ legacy: string | null; legacy_created_at: Date | null; now: Date }>(
    `SELECT value AS legacy, created_at AS legacy_created_at, now() AS now
     FROM (SELECT 1) AS one LEFT JOIN server_secrets ON name = 'cookie_key'`,
  );
  const { legacy, legacy_created_at: since, now } = rows[0]!;
  const initial: StoredCookieKey[] = [{ key: legacy ?? randomSecret(), createdAt: since ?? now, activatesAt: since ?? now }];
  await db.query(`INSERT INTO server_secrets (name, value) VALUES ('cookie_keys', $1) ON CONFLICT (name) DO NOTHING`, [
    JSON.stringify(initial),
  ]);
}

async function readCookieKeys(db: Queryable, options: { lock: boolean }): Promise<CookieKeyList> {
  await seedCookieKeys(db);
  const { rows } = await db.query<{ value: string; now: Date }>(
    options.lock
      ? `SELECT value, now() AS now FROM server_secrets WHERE name = 'cookie_keys' FOR UPDATE`
      : `SELECT value, now() AS now FROM server_secrets WHERE name = 'cookie_keys'`,
  );
  const parsed = storedCookieKeysSchema.safeParse(JSON.parse(rows[0]!.value));
  if (!parsed.success) throw new Error("server_secrets 'cookie_keys' is not a list of cookie keys");
  return { keys: parsed.data, now: rows[0]!.now };
}

const newestActivationFirst = (a: StoredCookieKey, b: StoredCookieKey) => b.activatesAt.getTime() - a.activatesAt.getTime();

/** Active keys, newest first (the first signs), then keys that do not sign yet but are already accepted. */
export function cookieKeysInSigningOrder({ keys, now }: CookieKeyList): string[] {
  const active = keys.filter((key) => key.activatesAt <= now).sort(newestActivationFirst);
  const pending = keys.filter((key) => key.activatesAt > now).sort(newestActivationFirst);
  return [...active, ...pending].map((key) => key.key);
}

/**
 * Drops a key once the key that replaced it has signed for longer than a session lives:
 * no cookie it signed can still be valid. The newest key is always kept.
 */
export function pruneCookieKeys(keys: StoredCookieKey[], now: Date, sessionTtlSeconds: number): StoredCookieKey[] {
  const sorted = [...keys].sort(newestActivationFirst);
  return sorted.filter((_key, i) => i === 0 || sorted[i - 1]!.activatesAt.getTime() + sessionTtlSeconds * 1000 > now.getTime());
}

export interface CookieKeyRotation {
  activatesAt: Date;
  /** How many keys are kept (the new one included). */
  keys: number;
  /** How many keys were dropped. */
  dropped: number;
}

/** Adds a new cookie key (signing from `activatesAt`), keeping previous keys while sessions they signed may live. */
export async function rotateCookieKeys(
  db: Database,
  config: Pick<Config, 'cookieKeys' | 'keyActivationDelaySeconds' | 'ttl'>,
  options: { activateImmediately: boolean },
): Promise<CookieKeyRotation> {
  if (config.cookieKeys) {
    throw new InvalidInput('COOKIE_KEYS is set, so cookie keys come from the environment: put a new key first in COOKIE_KEYS instead');
  }
  return db.transaction(async (tx) => {
    const { keys, now } = await readCookieKeys(tx, { lock: true });
    const activatesAt = new Date(now.getTime() + (options.activateImmediately ? 0 : config.keyActivationDelaySeconds * 1000));
    // A key that has not activated yet signed nothing, so replacing it invalidates no cookie.
    const signed = keys.filter((key) => key.activatesAt <= now);
    const next = pruneCookieKeys([{ key: randomSecret(), createdAt: now, activatesAt }, ...signed], now, config.ttl.session);
    await tx.query(`UPDATE server_secrets SET value = $1 WHERE name = 'cookie_keys'`, [JSON.stringify(next)]);
    return { activatesAt, keys: next.length, dropped: keys.length + 1 - next.length };
  });
}
