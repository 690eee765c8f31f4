import { generateKeyPair, randomBytes, type JsonWebKey } from 'node:crypto';
import { promisify } from 'node:util';
import type { Database, Queryable } from '../db/index.js';

const generateKeyPairAsync = promisify(generateKeyPair);

/** RS256 for the widest client compatibility, ES256 for compact, fast signatures. */
export const signingAlgorithms = ['RS256', 'ES256'] as const;
export type SigningAlgorithm = (typeof signingAlgorithms)[number];

export interface SigningKey {
  kid: string;
  alg: SigningAlgorithm;
  createdAt: Date;
  retiredAt: Date | null;
}

// Serialises key creation across instances starting at the same time.
const KEY_LOCK_ID = 727_002;

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

async function insertKey(tx: Queryable, alg: SigningAlgorithm): Promise<void> {
  const jwk = await generatePrivateJwk(alg);
  await tx.query('INSERT INTO signing_keys (kid, alg, private_jwk) VALUES ($1, $2, $3)', [jwk.kid, alg, jwk]);
}

/**
 * Returns the private JWKS every instance serves: active keys first (newest first, so the
 * newest key of each algorithm signs), then retired keys kept for verification.
 * Creates a key for any algorithm that has none, so the first start needs no setup.
 */
export async function loadSigningKeys(db: Database): Promise<{ keys: JsonWebKey[] }> {
  return db.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock($1)', [KEY_LOCK_ID]);
    const { rows: active } = await tx.query<{ alg: SigningAlgorithm }>('SELECT DISTINCT alg FROM signing_keys WHERE retired_at IS NULL');
    for (const alg of signingAlgorithms) {
      if (!active.some((row) => row.alg === alg)) await insertKey(tx, alg);
    }
    const { rows } = await tx.query<{ private_jwk: JsonWebKey }>(
      `SELECT private_jwk FROM signing_keys ORDER BY retired_at IS NOT NULL, created_at DESC`,
    );
    return { keys: rows.map((row) => row.private_jwk) };
  });
}

export async function listSigningKeys(db: Queryable): Promise<SigningKey[]> {
  const { rows } = await db.query<{ kid: string; alg: SigningAlgorithm; created_at: Date; retired_at: Date | null }>(
    'SELECT kid, alg, created_at, retired_at FROM signing_keys ORDER BY created_at DESC',
  );
  return rows.map((row) => ({ kid: row.kid, alg: row.alg, createdAt: row.created_at, retiredAt: row.retired_at }));
}
