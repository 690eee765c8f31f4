import { generateKeyPair, randomBytes, type JsonWebKey } from 'node:crypto';
import { promisify } from 'node:util';
import type { Config } from '../config.js';
import type { Database, Queryable } from '../db/index.js';
import { ConfigError } from '../errors.js';
import type { Logger } from '../logger.js';
import {
  decryptJson,
  encryptJson,
  envelopeSchema,
  KeyDecryptionError,
  keyEncryptionKey,
  type Envelope,
  type KeyRing,
} from '../security/key-encryption.js';
import { findStoredKeyEncryptionKey, storedKeyEncryptionKey } from './secrets.js';

const generateKeyPairAsync = promisify(generateKeyPair);

/** RS256 for the widest client compatibility, ES256 for compact, fast signatures. */
export const signingAlgorithms = ['RS256', 'ES256'] as const;
export type SigningAlgorithm = (typeof signingAlgorithms)[number];

/**
 * A key's life (migrations/0003): published from created_at, signs from activates_at,
 * stops signing at retires_at, leaves the JWKS at retired_at.
 * - pending: published, not signing yet (services' JWKS caches pick it up first)
 * - active: signs (the newest active key of an algorithm)
 * - retiring: published only so that tokens it signed still verify
 * - retired: no longer published; the row is deleted at the next rotation
 */
export type SigningKeyStatus = 'pending' | 'active' | 'retiring' | 'retired';

export interface SigningKey {
  kid: string;
  alg: SigningAlgorithm;
  status: SigningKeyStatus;
  createdAt: Date;
  activatesAt: Date;
  retiresAt: Date | null;
  retiredAt: Date | null;
  /** Id of the key-encryption key protecting it; null for a plaintext row not yet re-encrypted. */
  kek: string | null;
}

type KeyTimes = Pick<SigningKey, 'activatesAt' | 'retiresAt' | 'retiredAt'>;

export function signingKeyStatus(key: KeyTimes, now: Date): SigningKeyStatus {
  if (key.retiredAt && key.retiredAt <= now) return 'retired';
  // Checked before pending: an emergency rotation can retire a key that never activated.
  if (key.retiresAt && key.retiresAt <= now) return 'retiring';
  if (key.activatesAt > now) return 'pending';
  return 'active';
}

/**
 * How long a key stays published after it stops signing. ID tokens are the only JWTs we sign
 * that services keep (access tokens are opaque, looked up in the database; logout tokens
 * and signed userinfo are verified on receipt), so ID_TOKEN_TTL covers services verifying
 * them; ACCESS_TOKEN_TTL is included in case access tokens become JWTs. SESSION_TTL is
 * included because oidc-provider itself verifies ID tokens sent back as id_token_hint at
 * logout ignoring their expiry: a service logging a person out days later, within a session,
 * must not get an error page.
 */
export function verificationWindowSeconds(ttl: Config['ttl']): number {
  return Math.max(ttl.idToken, ttl.accessToken, ttl.session);
}

// Serialises key creation, rotation and re-encryption across instances and the CLI.
const KEY_LOCK_ID = 727_002;

/**
 * KEY_ENCRYPTION_KEY when set (plus the database-held KEK, if one was ever generated, to read
 * rows written before it was set). When unset, a KEK generated once and kept in
 * server_secrets. That protects nothing against a database dump; we still prefer it to
 * plaintext because every row then has one format, nothing prints a warning on a newcomer's
 * `npm start`, and setting KEY_ENCRYPTION_KEY later re-encrypts every key at the next start.
 */
/** keyRing, read once per process (for what seals and opens data often: queued mail). */
export function cachedKeyRing(db: Queryable, config: Pick<Config, 'keyEncryptionKeys'>): () => Promise<KeyRing> {
  let ring: Promise<KeyRing> | undefined;
  return () => {
    ring ??= keyRing(db, config).catch((error: unknown) => {
      ring = undefined;
      throw error;
    });
    return ring;
  };
}

export async function keyRing(db: Queryable, config: Pick<Config, 'keyEncryptionKeys'>): Promise<KeyRing> {
  if (!config.keyEncryptionKeys) {
    const stored = keyEncryptionKey(await storedKeyEncryptionKey(db));
    return { primary: stored, all: [stored] };
  }
  const configured = config.keyEncryptionKeys.map(keyEncryptionKey);
  const stored = await findStoredKeyEncryptionKey(db);
  return { primary: configured[0]!, all: stored ? [...configured, keyEncryptionKey(stored)] : configured };
}

async function generatePrivateJwk(alg: SigningAlgorithm): Promise<JsonWebKey> {
  const { privateKey } =
    alg === 'RS256'
      ? await generateKeyPairAsync('rsa', { modulusLength: 2048 })
      : await generateKeyPairAsync('ec', { namedCurve: 'P-256' });
  return {
    ...privateKey.export({ format: 'jwk' }),
    kid: randomBytes(12).toString('base64url'),
    alg,
    use: 'sig',
  };
}

/** The kid is the associated data: an envelope copied onto another row does not decrypt. */
const sealJwk = (jwk: JsonWebKey, ring: KeyRing): Envelope => encryptJson(jwk, String(jwk.kid), ring.primary);

async function insertKey(tx: Queryable, alg: SigningAlgorithm, ring: KeyRing, activatesAt: Date): Promise<{ kid: string }> {
  const jwk = await generatePrivateJwk(alg);
  await tx.query('INSERT INTO signing_keys (kid, alg, private_jwk_envelope, activates_at) VALUES ($1, $2, $3, $4)', [
    jwk.kid,
    alg,
    sealJwk(jwk, ring),
    activatesAt,
  ]);
  return { kid: String(jwk.kid) };
}

// A type, not an interface: query rows need an implicit index signature.
type KeyRow = {
  kid: string;
  alg: SigningAlgorithm;
  private_jwk: JsonWebKey | null;
  private_jwk_envelope: unknown;
  created_at: Date;
  activates_at: Date;
  retires_at: Date | null;
  retired_at: Date | null;
};

interface PublishedKey {
  jwk: JsonWebKey;
  status: SigningKeyStatus;
  activatesAt: Date;
  retiresAt: Date | null;
}

function openRow(row: KeyRow, ring: KeyRing): { jwk: JsonWebKey; stale: boolean } {
  if (row.private_jwk) return { jwk: row.private_jwk, stale: true };
  const envelope = envelopeSchema.safeParse(row.private_jwk_envelope);
  if (!envelope.success) throw new Error(`signing key ${row.kid}: stored envelope is malformed`);
  let jwk: JsonWebKey;
  try {
    jwk = decryptJson(envelope.data, row.kid, ring.all) as JsonWebKey;
  } catch (error) {
    const message = `signing key ${row.kid} cannot be read: ${(error as Error).message}`;
    throw error instanceof ConfigError ? new ConfigError(message, { cause: error }) : new KeyDecryptionError(message, { cause: error });
  }
  if (jwk.kid !== row.kid) throw new KeyDecryptionError(`signing key ${row.kid}: decrypted key has kid ${String(jwk.kid)}`);
  return { jwk, stale: envelope.data.kek !== ring.primary.id };
}

/**
 * Decrypts every key and returns the published ones (not retired). Re-encrypts under the
 * primary KEK any row that is plaintext (written before migration 0003) or under another KEK,
 * retired rows included: they stay at rest until the next rotation deletes them.
 */
async function readPublishedKeys(tx: Queryable, ring: KeyRing, now: Date): Promise<PublishedKey[]> {
  const { rows } = await tx.query<KeyRow>(
    'SELECT kid, alg, private_jwk, private_jwk_envelope, created_at, activates_at, retires_at, retired_at FROM signing_keys',
  );
  const keys: PublishedKey[] = [];
  for (const row of rows) {
    const { jwk, stale } = openRow(row, ring);
    if (stale) {
      await tx.query('UPDATE signing_keys SET private_jwk = NULL, private_jwk_envelope = $2 WHERE kid = $1', [row.kid, sealJwk(jwk, ring)]);
    }
    const times = { activatesAt: row.activates_at, retiresAt: row.retires_at, retiredAt: row.retired_at };
    const status = signingKeyStatus(times, now);
    if (status !== 'retired') keys.push({ jwk, status, ...times });
  }
  return keys;
}

const statusRank: Record<SigningKeyStatus, number> = { active: 0, pending: 1, retiring: 2, retired: 3 };

/**
 * oidc-provider signs with the FIRST key of the needed algorithm in the JWKS array, so:
 * active keys, newest activation first (the newest signs); then pending keys (published,
 * not signing); then retiring keys (verification only).
 */
function inSigningOrder(keys: PublishedKey[]): PublishedKey[] {
  const time = (date: Date | null) => date?.getTime() ?? Number.POSITIVE_INFINITY;
  return [...keys].sort((a, b) => {
    if (a.status !== b.status) return statusRank[a.status] - statusRank[b.status];
    if (a.status === 'active') return b.activatesAt.getTime() - a.activatesAt.getTime();
    if (a.status === 'pending') return a.activatesAt.getTime() - b.activatesAt.getTime();
    return time(b.retiresAt) - time(a.retiresAt);
  });
}

async function databaseNow(tx: Queryable): Promise<Date> {
  const { rows } = await tx.query<{ now: Date }>('SELECT now() AS now');
  return rows[0]!.now;
}

/** Gives every algorithm a signing key when it has none (first start, or all retiring), so the first start needs no setup. */
async function ensureSigningKeys(tx: Queryable, ring: KeyRing, now: Date, keys: PublishedKey[]): Promise<boolean> {
  let created = false;
  for (const alg of signingAlgorithms) {
    const usable = keys.some((key) => key.jwk.alg === alg && (key.status === 'active' || key.status === 'pending'));
    if (!usable) {
      await insertKey(tx, alg, ring, now);
      created = true;
    }
  }
  return created;
}

export interface LoadSigningKeysOptions {
  config: Config;
  logger?: Logger;
}

/**
 * Returns the private JWKS this instance serves and signs with, in signing order (see
 * inSigningOrder). Read at start and again every KEY_REFRESH_SECONDS (key-refresh.ts), so a
 * rotation, an activation and a retirement reach every running instance.
 */
export async function loadSigningKeys(db: Database, options: LoadSigningKeysOptions): Promise<{ keys: JsonWebKey[] }> {
  // An https issuer without KEY_ENCRYPTION_KEY refuses to start (config.ts) unless told to, and then says so (http/app.ts).
  const { config } = options;
  return db.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock($1)', [KEY_LOCK_ID]);
    const ring = await keyRing(tx, config);
    const now = await databaseNow(tx);
    let keys = await readPublishedKeys(tx, ring, now);
    if (await ensureSigningKeys(tx, ring, now, keys)) keys = await readPublishedKeys(tx, ring, now);
    return { keys: inSigningOrder(keys).map((key) => key.jwk) };
  });
}

export interface SigningKeyRotation {
  /** When the new keys sign (now with activateImmediately). */
  activatesAt: Date;
  created: { kid: string; alg: SigningAlgorithm }[];
  /** Keys that stop signing at activatesAt and leave the JWKS at retiredAt. */
  retiring: { kid: string; alg: SigningAlgorithm; retiresAt: Date; retiredAt: Date }[];
  /** Keys past retired_at, no longer published, deleted now. */
  deleted: string[];
}

/**
 * Adds a new key per algorithm, published at once and signing after
 * KEY_ACTIVATION_DELAY_SECONDS (services cache the JWKS; a key must be in it before it signs),
 * or at once with activateImmediately. Every key still signing or due to sign stops at that
 * moment and stays published for the verification window, so tokens it signed still verify.
 * `compromised` (a leaked key) activates the new keys at once and withdraws the old ones
 * from the JWKS at the same moment: whatever they signed, a forger's tokens included, stops
 * verifying. That is the point.
 */
export async function rotateSigningKeys(
  db: Database,
  config: Config,
  options: { activateImmediately: boolean; compromised?: boolean },
): Promise<SigningKeyRotation> {
  return db.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock($1)', [KEY_LOCK_ID]);
    const ring = await keyRing(tx, config);
    const now = await databaseNow(tx);
    // Re-encrypts stale rows, and gives a never-started database keys to rotate away from.
    await ensureSigningKeys(tx, ring, now, await readPublishedKeys(tx, ring, now));

    const immediately = options.activateImmediately || options.compromised === true;
    const activatesAt = new Date(now.getTime() + (immediately ? 0 : config.keyActivationDelaySeconds * 1000));
    const retiredAt = options.compromised ? activatesAt : new Date(activatesAt.getTime() + verificationWindowSeconds(config.ttl) * 1000);
    // A compromise withdraws every published key, those already only verifying included.
    const { rows: retiring } = await tx.query<{ kid: string; alg: SigningAlgorithm; retires_at: Date; retired_at: Date }>(
      options.compromised
        ? `UPDATE signing_keys SET retires_at = least(coalesce(retires_at, $1), $1), retired_at = $2
           WHERE retired_at IS NULL OR retired_at > $1
           RETURNING kid, alg, retires_at, retired_at`
        : `UPDATE signing_keys SET retires_at = $1, retired_at = $2
           WHERE retires_at IS NULL OR retires_at > $1
           RETURNING kid, alg, retires_at, retired_at`,
      [activatesAt, retiredAt],
    );
    const created: SigningKeyRotation['created'] = [];
    for (const alg of signingAlgorithms) created.push({ ...(await insertKey(tx, alg, ring, activatesAt)), alg });
    // Retired keys verify nothing any more; deleting them leaves less key material at rest.
    const { rows: deleted } = await tx.query<{ kid: string }>('DELETE FROM signing_keys WHERE retired_at <= $1 RETURNING kid', [now]);
    return {
      activatesAt,
      created,
      retiring: retiring.map((row) => ({ kid: row.kid, alg: row.alg, retiresAt: row.retires_at, retiredAt: row.retired_at })),
      deleted: deleted.map((row) => row.kid),
    };
  });
}

/** Every stored key with its status; never key material. */
export async function listSigningKeys(db: Queryable): Promise<SigningKey[]> {
  const { rows } = await db.query<Omit<KeyRow, 'private_jwk' | 'private_jwk_envelope'> & { kek: string | null; now: Date }>(
    `SELECT kid, alg, created_at, activates_at, retires_at, retired_at, private_jwk_envelope->>'kek' AS kek, now() AS now
     FROM signing_keys ORDER BY activates_at DESC, created_at DESC, alg`,
  );
  return rows.map((row) => {
    const times = { activatesAt: row.activates_at, retiresAt: row.retires_at, retiredAt: row.retired_at };
    return { kid: row.kid, alg: row.alg, status: signingKeyStatus(times, row.now), createdAt: row.created_at, ...times, kek: row.kek };
  });
}
