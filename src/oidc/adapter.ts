import type { Adapter, AdapterPayload } from 'oidc-provider';
import { errors } from 'oidc-provider';
import type { Database } from '../db/index.js';
import { hashClientSecret, isHashedClientSecret } from '../security/client-secrets.js';

/**
 * oidc-provider's storage contract on Postgres. Every model shares `oidc_payloads`; the
 * Client model reads the `clients` table the admin CLI writes. This is the only code that
 * knows the tables of protocol artefacts.
 */
/** Postgres text cannot hold NUL, so an identifier containing one was never stored. */
function storable(value: string): boolean {
  return typeof value === 'string' && !value.includes('\u0000');
}

// Client metadata is read on every token, userinfo and introspection request; keeping it for
// a few seconds saves a statement each time (bench/RESULTS.md). Changes made through this
// process apply at once; CLI changes reach running servers within CLIENT_CACHE_MS.
const CLIENT_CACHE_MS = 5000;

export function createAdapterFactory(db: Database) {
  const clientCache = new Map<string, { metadata: AdapterPayload; until: number }>();
  return class PostgresAdapter implements Adapter {
    constructor(readonly model: string) {}

    async upsert(id: string, payload: AdapterPayload, expiresIn: number | undefined): Promise<void> {
      if (this.model === 'Client') {
        // Dynamic registration hands us the issued secret; keep only its digest.
        const secret = payload['client_secret'];
        if (typeof secret === 'string' && !isHashedClientSecret(secret)) payload = { ...payload, client_secret: hashClientSecret(secret) };
        clientCache.delete(id);
        await db.query(
          `INSERT INTO clients (id, metadata) VALUES ($1, $2)
           ON CONFLICT (id) DO UPDATE SET metadata = EXCLUDED.metadata, updated_at = now()`,
          [id, payload],
        );
        return;
      }
      // jsonb cannot hold NUL; such a value came from a request parameter (state, nonce …).
      if (JSON.stringify(payload).includes('\\u0000'))
        throw new errors.InvalidRequest('request parameters must not contain NUL characters');
      // Grants are keyed by their own id, so revoking a grant removes the grant row too.
      const grantId = this.model === 'Grant' ? id : (payload.grantId ?? null);
      await db.query(
        `INSERT INTO oidc_payloads (model, id, payload, grant_id, user_code, uid, account_id, client_id, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, CASE WHEN $9::int IS NULL THEN NULL ELSE now() + make_interval(secs => $9::int) END)
         ON CONFLICT (model, id) DO UPDATE SET
           payload = EXCLUDED.payload, grant_id = EXCLUDED.grant_id, user_code = EXCLUDED.user_code,
           uid = EXCLUDED.uid, account_id = EXCLUDED.account_id, client_id = EXCLUDED.client_id, expires_at = EXCLUDED.expires_at`,
        [
          this.model,
          id,
          payload,
          grantId,
          payload.userCode ?? null,
          payload.uid ?? null,
          payload.accountId ?? null,
          payload.clientId ?? null,
          expiresIn ?? null,
        ],
      );
    }

    async find(id: string): Promise<AdapterPayload | undefined> {
      if (!storable(id)) return undefined;
      if (this.model === 'Client') {
        const cached = clientCache.get(id);
        if (cached && cached.until > Date.now()) return cached.metadata;
        const { rows } = await db.query<{ metadata: AdapterPayload }>('SELECT metadata FROM clients WHERE id = $1', [id]);
        // Unknown ids are not remembered: a service registered a moment ago must work at once.
        if (rows[0]) {
          if (clientCache.size > 10_000) clientCache.clear();
          clientCache.set(id, { metadata: rows[0].metadata, until: Date.now() + CLIENT_CACHE_MS });
        }
        return rows[0]?.metadata;
      }
      return this.findWhere('id = $2', id);
    }

    findByUid(uid: string): Promise<AdapterPayload | undefined> {
      return this.findWhere('uid = $2', uid);
    }

    findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
      return this.findWhere('user_code = $2', userCode);
    }

    private async findWhere(condition: string, value: string): Promise<AdapterPayload | undefined> {
      if (!storable(value)) return undefined;
      const { rows } = await db.query<{ payload: AdapterPayload; consumed: number | null }>(
        `SELECT payload, extract(epoch FROM consumed_at)::bigint AS consumed FROM oidc_payloads
         WHERE model = $1 AND ${condition} AND (expires_at IS NULL OR expires_at > now())`,
        [this.model, value],
      );
      const row = rows[0];
      if (!row) return undefined;
      return row.consumed === null ? row.payload : { ...row.payload, consumed: Number(row.consumed) };
    }

    /**
     * Marks a code or refresh token used. Only one caller can win: the loser (a concurrent
     * replay) revokes everything issued under the grant and gets invalid_grant, as
     * RFC 9700 §4.5 asks of a reused code.
     */
    async consume(id: string): Promise<void> {
      const { rowCount } = await db.query(
        `UPDATE oidc_payloads SET consumed_at = now()
         WHERE model = $1 AND id = $2 AND consumed_at IS NULL AND (expires_at IS NULL OR expires_at > now())`,
        [this.model, id],
      );
      if (rowCount === 1) return;
      const { rows } = await db.query<{ grant_id: string | null }>('SELECT grant_id FROM oidc_payloads WHERE model = $1 AND id = $2', [
        this.model,
        id,
      ]);
      const grantId = rows[0]?.grant_id;
      if (grantId) await db.query('DELETE FROM oidc_payloads WHERE grant_id = $1', [grantId]);
      throw new errors.InvalidGrant('grant already used');
    }

    async destroy(id: string): Promise<void> {
      if (this.model === 'Client') {
        clientCache.delete(id);
        await db.query('DELETE FROM clients WHERE id = $1', [id]);
        return;
      }
      await db.query('DELETE FROM oidc_payloads WHERE model = $1 AND id = $2', [this.model, id]);
    }

    async revokeByGrantId(grantId: string): Promise<void> {
      await db.query('DELETE FROM oidc_payloads WHERE grant_id = $1 AND model = $2', [grantId, this.model]);
    }
  };
}

/**
 * Deletes expired rows in batches of `batchSize` so that no statement holds locks for
 * long; returns how many rows went. Expired rows are never returned by `find` anyway.
 */
export async function sweepExpired(db: Database, batchSize: number, maxBatches = 1000): Promise<number> {
  let total = 0;
  for (let batch = 0; batch < maxBatches; batch += 1) {
    const { rowCount } = await db.query(
      `DELETE FROM oidc_payloads WHERE ctid IN (
         SELECT ctid FROM oidc_payloads WHERE expires_at <= now() LIMIT $1
       )`,
      [batchSize],
    );
    total += rowCount ?? 0;
    if ((rowCount ?? 0) < batchSize) break;
  }
  return total;
}
