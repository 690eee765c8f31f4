import { createHash } from 'node:crypto';
import type { Adapter, AdapterPayload } from 'oidc-provider';
import { errors } from 'oidc-provider';
import { NotifiedCache, type ChangeNotices } from '../db/change-notices.js';
import { sameTurnBatch, sameTurnWriteBatch } from '../db/same-turn-batch.js';
import { unchangedSessions } from './unchanged-sessions.js';
import type { Database } from '../db/index.js';
import { hashClientSecret, isHashedClientSecret } from '../security/client-secrets.js';

/**
 * oidc-provider's storage contract on Postgres. Every model shares `oidc_payloads`; the
 * Client model reads the `clients` table the admin CLI writes. This module and its query
 * module beside it (artefacts.ts) are the only code that knows the table.
 *
 * Most models are keyed by a credential: an authorization code, an access or refresh token,
 * a session cookie, an interaction cookie. Those rows are stored under the SHA-256 of the
 * value and without the value in their payload, so a database dump yields nothing a
 * browser or a service could present. Grants are keyed by a reference that is not a
 * credential and keep their id.
 */
const modelsKeyedByReference = new Set(['Grant', 'Client']);

export const digestOf = (value: string) => createHash('sha256').update(value).digest('base64url');

/**
 * A value the adapter must get back from storage although it is a credential: the device
 * code, which oidc-provider needs again when the person enters the user code (it finds the
 * row by that code and saves it under its id) and which an interaction refers to. Sealed with
 * a key that is not in the database (derived from the cookie keys).
 */
export interface Sealer {
  seal(value: string, purpose: string): unknown;
  open(sealed: unknown, purpose: string): string | undefined;
}

/** The id a row of this model is stored under. */
export function storedId(model: string, id: string): string {
  return modelsKeyedByReference.has(model) ? id : digestOf(id);
}

/** Postgres text cannot hold NUL, so an identifier containing one was never stored. */
function storable(value: string): boolean {
  return typeof value === 'string' && !value.includes('\u0000');
}

type Payload = AdapterPayload & Record<string, unknown>;

/** The account a row concerns, so that deleting an account or ending its sessions finds every row. */
function accountOf(model: string, payload: Payload): string | null {
  if (payload.accountId) return payload.accountId;
  if (model !== 'Interaction') return null;
  const session = payload['session'] as { accountId?: string } | undefined;
  const login = (payload['lastSubmission'] as { login?: { accountId?: string } } | undefined)?.login;
  const result = (payload['result'] as { login?: { accountId?: string } } | undefined)?.login;
  return session?.accountId ?? result?.accountId ?? login?.accountId ?? null;
}

/**
 * What is written for a credential-keyed row: no `jti` (it is the value), no user code, the
 * interaction's copy of the session cookie as a digest, and the resume URL without the
 * interaction id (also the interaction cookie's value). `restore` puts back what the
 * caller knows again when it looks the row up.
 */
function sealed(model: string, id: string, payload: Payload, sealer: Sealer): Payload {
  if (modelsKeyedByReference.has(model)) return payload;
  const { jti: _jti, userCode: _userCode, ...rest } = payload;
  const stored: Payload = rest;
  if (model === 'DeviceCode') stored['sealedId'] = sealer.seal(id, 'device code');
  if (model === 'Interaction') {
    const deviceCode = payload['deviceCode'];
    if (typeof deviceCode === 'string') (stored as Record<string, unknown>)['deviceCode'] = sealer.seal(deviceCode, 'device code');
    const session = payload['session'] as { cookie?: string } | undefined;
    if (session?.cookie) stored['session'] = { ...session, cookie: digestOf(session.cookie) };
    const returnTo = payload['returnTo'];
    if (typeof returnTo === 'string' && returnTo.endsWith(`/${id}`)) {
      stored['returnTo'] = returnTo.slice(0, -id.length);
      stored['returnToEndsWithId'] = true;
    }
  }
  return stored;
}

function restore(model: string, id: string, stored: Payload, sealer: Sealer): Payload {
  if (modelsKeyedByReference.has(model)) return stored;
  const { returnToEndsWithId, sealedId: _sealedId, ...payload } = stored;
  if (returnToEndsWithId === true && typeof payload['returnTo'] === 'string') payload['returnTo'] = `${payload['returnTo']}${id}`;
  if (model === 'Interaction' && payload['deviceCode'] !== undefined)
    payload['deviceCode'] = sealer.open(payload['deviceCode'], 'device code');
  return { ...payload, jti: id };
}

const DEVICE_CODE_GRACE_SECONDS = 600;

/** An oidc_payloads row as written (`lifetime` in seconds from now, null: no expiry). */
interface PayloadWrite {
  model: string;
  id: string;
  payload: Payload;
  grantId: string | null;
  userCode: string | null;
  uid: string | null;
  accountId: string | null;
  clientId: string | null;
  lifetime: number | null;
}

const upsertAssignments = `payload = EXCLUDED.payload, grant_id = EXCLUDED.grant_id, user_code = EXCLUDED.user_code,
  uid = EXCLUDED.uid, account_id = EXCLUDED.account_id, client_id = EXCLUDED.client_id, expires_at = EXCLUDED.expires_at`;

/** An oidc_payloads row as read: the payload, when it was consumed, and when it expires (ms since the epoch). */
type PayloadRow = { payload: Payload; consumed: number | null; expires: number | null };

const readColumns = `payload, extract(epoch FROM consumed_at)::bigint AS consumed,
  (extract(epoch FROM expires_at) * 1000)::float8 AS expires`;

/**
 * The models whose live rows a serving instance keeps in memory (migrations/0026 announces
 * every change to them): each token, userinfo and introspection request reads its token and
 * its grant, and those rows change rarely once written. Sessions are not kept: they change at
 * every sign-in, and keeping them as well measured slower, not faster (bench/RESULTS.md).
 */
const keptModels = new Set(['AccessToken', 'ClientCredentials', 'AuthorizationCode', 'RefreshToken', 'Grant']);
/**
 * Of those, the ones written once when issued: kept from the moment this instance writes them,
 * since the service that got one presents it again within moments. A client-credentials token
 * goes to the service's own resource servers, which introspect it: kept once read, not when
 * issued (keeping each measured 0.76 -> 0.68 of the reference at 50 connections).
 */
const keptWhenIssued = new Set(['AccessToken', 'AuthorizationCode', 'RefreshToken']);
/** The name a kept row goes by in the cache, as the notices of migrations/0026 spell it. */
const keptName = (model: string, id: string) => `${model}:${id}`;

/** Live rows looked up by (model, id) or by (model, uid): those of one event-loop turn in one statement. */
function batchedPayloadRead(db: Database, column: 'id' | 'uid') {
  return sameTurnBatch<{ model: string; key: string }, PayloadRow>({
    one: async ({ model, key }) =>
      (
        await db.query<PayloadRow>(
          `SELECT ${readColumns} FROM oidc_payloads
           WHERE model = $1 AND ${column} = $2 AND (expires_at IS NULL OR expires_at > now())`,
          [model, key],
        )
      ).rows[0],
    many: async (keys) => {
      const { rows } = await db.query<PayloadRow & { model: string; key: string }>(
        `SELECT model, ${column} AS key, ${readColumns} FROM oidc_payloads
         WHERE ${column} IS NOT NULL AND (model, ${column}) IN (SELECT * FROM unnest($1::text[], $2::text[]))
           AND (expires_at IS NULL OR expires_at > now())`,
        [keys.map((key) => key.model), keys.map((key) => key.key)],
        // Prepared, its plan was made once for a small table: a hash join over a scan of every row.
        { prepare: false },
      );
      return new Map(rows.map((row) => [`${row.model}\0${row.key}`, row]));
    },
    idOf: ({ model, key }) => `${model}\0${key}`,
  });
}

export function createAdapterFactory(db: Database, sealer: Sealer, changeNotices?: ChangeNotices) {
  // Client metadata is read on every token, userinfo and introspection request: a serving
  // instance keeps it while Postgres's change notices are live, so any change applies at once.
  const clientCache = changeNotices ? new NotifiedCache<AdapterPayload>(changeNotices, 'clients') : undefined;
  // Token reads of one event-loop turn (introspection's three kinds, concurrent requests) as one
  // statement; likewise the session each token request looks up by its uid.
  const readPayload = batchedPayloadRead(db, 'id');
  const readPayloadByUid = batchedPayloadRead(db, 'uid');
  const keptRows = changeNotices ? new NotifiedCache<PayloadRow>(changeNotices, 'artefacts', 20_000) : undefined;
  /** A live row by id, from memory when this instance holds it. The caller gets its own copy to change. */
  const readRow = async (model: string, key: string): Promise<PayloadRow | undefined> => {
    if (!keptRows || !keptModels.has(model)) return readPayload({ model, key });
    const name = keptName(model, key);
    const row = await keptRows.get(name, () => readPayload({ model, key }));
    if (!row) return undefined;
    if (row.expires !== null && row.expires <= Date.now()) {
      keptRows.forget(name);
      return undefined;
    }
    return { ...row, payload: structuredClone(row.payload) };
  };
  // Token writes of one event-loop turn (concurrent requests' codes, access and refresh tokens) as one statement.
  const writePayload = sameTurnWriteBatch<PayloadWrite>({
    one: async (row) => {
      await db.query(
        `INSERT INTO oidc_payloads (model, id, payload, grant_id, user_code, uid, account_id, client_id, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, CASE WHEN $9::int IS NULL THEN NULL ELSE now() + make_interval(secs => $9::int) END)
         ON CONFLICT (model, id) DO UPDATE SET ${upsertAssignments}`,
        [row.model, row.id, row.payload, row.grantId, row.userCode, row.uid, row.accountId, row.clientId, row.lifetime],
      );
    },
    many: async (rows) => {
      const column = <K extends keyof PayloadWrite>(name: K) => rows.map((row) => row[name]);
      await db.query(
        `INSERT INTO oidc_payloads (model, id, payload, grant_id, user_code, uid, account_id, client_id, expires_at)
         SELECT model, id, payload::jsonb, grant_id, user_code, uid, account_id, client_id,
                CASE WHEN lifetime IS NULL THEN NULL ELSE now() + make_interval(secs => lifetime) END
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::int[])
           AS row (model, id, payload, grant_id, user_code, uid, account_id, client_id, lifetime)
         ON CONFLICT (model, id) DO UPDATE SET ${upsertAssignments}`,
        [
          column('model'),
          column('id'),
          rows.map((row) => JSON.stringify(row.payload)),
          column('grantId'),
          column('userCode'),
          column('uid'),
          column('accountId'),
          column('clientId'),
          column('lifetime'),
        ],
      );
    },
    idOf: (row) => `${row.model}\0${row.id}`,
  });
  const sessions = unchangedSessions();
  const readClient = async (id: string) =>
    (await db.query<{ metadata: AdapterPayload }>('SELECT metadata FROM clients WHERE id = $1', [id])).rows[0]?.metadata;
  return class PostgresAdapter implements Adapter {
    constructor(readonly model: string) {}

    async upsert(id: string, payload: AdapterPayload, expiresIn: number | undefined): Promise<void> {
      if (this.model === 'Client') {
        // Dynamic registration hands us the issued secret; keep only its digest.
        const secret = payload['client_secret'];
        if (typeof secret === 'string' && !isHashedClientSecret(secret)) payload = { ...payload, client_secret: hashClientSecret(secret) };
        clientCache?.forget(id);
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
      const full = payload as Payload;
      // Grants are keyed by their own id, so revoking a grant removes the grant row too.
      const grantId = this.model === 'Grant' ? id : (full.grantId ?? null);
      // A device that polls after its code expired must hear expired_token (RFC 8628 §3.5), which
      // oidc-provider says only if it still finds the code: the row outlives the code a while.
      const lifetime = expiresIn === undefined ? null : expiresIn + (this.model === 'DeviceCode' ? DEVICE_CODE_GRACE_SECONDS : 0);
      const key = storedId(this.model, id);
      const stored = sealed(this.model, id, full, sealer);
      if (this.model === 'Session') {
        if (sessions.wouldNotChange(key, stored)) return;
        sessions.written(key, stored);
      }
      const write = () =>
        writePayload({
          model: this.model,
          id: key,
          payload: stored,
          grantId,
          userCode: full.userCode ? digestOf(full.userCode) : null,
          // A session's uid is its public handle (support tools, sessionUid in tokens), not its cookie.
          uid: full.uid ?? null,
          accountId: accountOf(this.model, full),
          clientId: full.clientId ?? null,
          lifetime,
        });
      if (!keptRows || !keptModels.has(this.model)) return write();
      if (!keptWhenIssued.has(this.model)) {
        keptRows.forget(keptName(this.model, key));
        return write();
      }
      const expires = lifetime === null ? null : Date.now() + lifetime * 1000;
      await keptRows.write(keptName(this.model, key), async () => {
        await write();
        return { payload: structuredClone(stored), consumed: null, expires };
      });
    }

    async find(id: string): Promise<AdapterPayload | undefined> {
      if (!storable(id)) return undefined;
      if (this.model === 'Client') {
        return clientCache ? clientCache.get(id, () => readClient(id)) : readClient(id);
      }
      const key = storedId(this.model, id);
      if (!storable(key)) return undefined;
      const row = await readRow(this.model, key);
      if (!row) return undefined;
      if (this.model === 'Session') sessions.read(key, row.payload);
      const stored = (row.consumed === null ? row.payload : { ...row.payload, consumed: Number(row.consumed) }) as Payload;
      return restore(this.model, id, stored, sealer);
    }

    async findByUid(uid: string): Promise<AdapterPayload | undefined> {
      // Sessions only; their id (the cookie) cannot be recovered from the row, nor is it needed
      // by the callers (every token request's session check, support tools ending a session by its handle).
      if (!storable(uid)) return undefined;
      const row = await readPayloadByUid({ model: this.model, key: uid });
      if (!row) return undefined;
      return row.consumed === null ? row.payload : { ...row.payload, consumed: Number(row.consumed) };
    }

    async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
      if (!storable(userCode)) return undefined;
      const stored = await this.findWhere('user_code = $2', digestOf(userCode));
      const id = stored && sealer.open(stored['sealedId'], 'device code');
      // A row whose device code cannot be opened (sealed under a key dropped since) is of no use.
      return id === undefined ? undefined : { ...restore(this.model, id, stored!, sealer), userCode };
    }

    private async findWhere(condition: string, value: string): Promise<Payload | undefined> {
      if (!storable(value)) return undefined;
      const { rows } = await db.query<PayloadRow>(
        `SELECT ${readColumns} FROM oidc_payloads
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
      const key = storedId(this.model, id);
      keptRows?.forget(keptName(this.model, key));
      const { rowCount } = await db.query(
        `UPDATE oidc_payloads SET consumed_at = now()
         WHERE model = $1 AND id = $2 AND consumed_at IS NULL AND (expires_at IS NULL OR expires_at > now())`,
        [this.model, key],
      );
      if (rowCount === 1) return;
      const { rows } = await db.query<{ grant_id: string | null }>('SELECT grant_id FROM oidc_payloads WHERE model = $1 AND id = $2', [
        this.model,
        key,
      ]);
      const grantId = rows[0]?.grant_id;
      if (grantId) await db.query('DELETE FROM oidc_payloads WHERE grant_id = $1', [grantId]);
      throw new errors.InvalidGrant('grant already used');
    }

    async destroy(id: string): Promise<void> {
      if (this.model === 'Client') {
        clientCache?.forget(id);
        await db.query('DELETE FROM clients WHERE id = $1', [id]);
        return;
      }
      const key = storedId(this.model, id);
      if (this.model === 'Session') sessions.forget(key);
      // The notice of the DELETE names the row everywhere; here it must be gone before the answer.
      keptRows?.forget(keptName(this.model, key));
      await db.query('DELETE FROM oidc_payloads WHERE model = $1 AND id = $2', [this.model, key]);
    }

    async revokeByGrantId(grantId: string): Promise<void> {
      keptRows?.forgetWhere((row) => row.payload.grantId === grantId);
      if (this.model === 'Grant') keptRows?.forget(keptName('Grant', grantId));
      await db.query('DELETE FROM oidc_payloads WHERE grant_id = $1 AND model = $2', [grantId, this.model]);
    }
  };
}
