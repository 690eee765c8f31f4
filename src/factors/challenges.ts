import { createHash, createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Queryable } from '../db/index.js';

/**
 * WebAuthn challenges, signed rather than stored: a page can carry one without a database
 * write per view. A challenge is a random nonce, its expiry and an HMAC over both and what it
 * is bound to (the interaction, the account-page session), under a key derived from the
 * cookie keys (the newest signs, every current one verifies). Answering one spends it
 * (spent_challenges), so it is accepted once.
 */
const NONCE_BYTES = 16;
const MAC_BYTES = 16;

export interface ChallengeKeys {
  /** The current cookie keys, newest first. */
  cookieKeys(): readonly string[];
}

const derived = new Map<string, Buffer>();
function macKey(cookieKey: string): Buffer {
  let key = derived.get(cookieKey);
  if (!key) {
    key = Buffer.from(hkdfSync('sha256', cookieKey, '', 'group-idp webauthn challenges', 32));
    derived.set(cookieKey, key);
  }
  return key;
}

function mac(key: Buffer, binding: string, body: Buffer): Buffer {
  return createHmac('sha256', key).update(binding).update('\u0000').update(body).digest().subarray(0, MAC_BYTES);
}

/** A new challenge (base64url) for `binding`, valid `ttlSeconds`. */
export function issueChallenge(keys: ChallengeKeys, binding: string, ttlSeconds: number, now = Date.now()): string {
  const body = Buffer.alloc(NONCE_BYTES + 4);
  randomBytes(NONCE_BYTES).copy(body);
  body.writeUInt32BE(Math.floor(now / 1000) + ttlSeconds, NONCE_BYTES);
  return Buffer.concat([body, mac(macKey(keys.cookieKeys()[0]!), binding, body)]).toString('base64url');
}

/** When a challenge expires, if it is one of ours for `binding` and has not expired; undefined otherwise. */
export function checkChallenge(keys: ChallengeKeys, challenge: string, binding: string, now = Date.now()): Date | undefined {
  if (!/^[A-Za-z0-9_-]{48}$/.test(challenge)) return undefined;
  const bytes = Buffer.from(challenge, 'base64url');
  const body = bytes.subarray(0, NONCE_BYTES + 4);
  const tag = bytes.subarray(NONCE_BYTES + 4);
  const genuine = keys.cookieKeys().some((key) => timingSafeEqual(mac(macKey(key), binding, body), tag));
  const expiresAt = body.readUInt32BE(NONCE_BYTES) * 1000;
  return genuine && expiresAt > now ? new Date(expiresAt) : undefined;
}

/** Marks a challenge answered; false when it already was (a replay). */
export async function spendChallenge(db: Queryable, challenge: string, expiresAt: Date): Promise<boolean> {
  const { rowCount } = await db.query('INSERT INTO spent_challenges (digest, expires_at) VALUES ($1, $2) ON CONFLICT DO NOTHING', [
    createHash('sha256').update(challenge).digest('base64url'),
    expiresAt,
  ]);
  return rowCount === 1;
}

export async function sweepSpentChallenges(db: Queryable): Promise<number> {
  const { rowCount } = await db.query('DELETE FROM spent_challenges WHERE expires_at < now()');
  return rowCount ?? 0;
}
