import type { Queryable } from '../db/index.js';

/** An oidc_payloads row as the adapter reads it: the payload, and when it was consumed. */
export type PayloadRow = {
  payload: Record<string, unknown>;
  consumed: number | null;
};

interface Waiting {
  model: string;
  id: string;
  resolve: (row: PayloadRow | undefined) => void;
  reject: (error: unknown) => void;
}

const singleRead = `SELECT payload, extract(epoch FROM consumed_at)::bigint AS consumed FROM oidc_payloads
  WHERE model = $1 AND id = $2 AND (expires_at IS NULL OR expires_at > now())`;
const manyReads = `SELECT model, id, payload, extract(epoch FROM consumed_at)::bigint AS consumed FROM oidc_payloads
  WHERE (model, id) IN (SELECT * FROM unnest($1::text[], $2::text[])) AND (expires_at IS NULL OR expires_at > now())`;

/**
 * Reads of live oidc_payloads rows by (model, id). Those asked for in one turn of the event
 * loop go to Postgres as one statement: introspection looks a token up as three kinds at once,
 * and concurrent requests' lookups share a round trip. Each caller still gets only its row.
 */
export function batchedPayloadReads(db: Queryable): (model: string, id: string) => Promise<PayloadRow | undefined> {
  let waiting: Waiting[] = [];

  async function flush(): Promise<void> {
    const batch = waiting;
    waiting = [];
    try {
      if (batch.length === 1) {
        const [only] = batch as [Waiting];
        const { rows } = await db.query<PayloadRow>(singleRead, [only.model, only.id]);
        only.resolve(rows[0]);
        return;
      }
      const { rows } = await db.query<PayloadRow & { model: string; id: string }>(manyReads, [
        batch.map((read) => read.model),
        batch.map((read) => read.id),
      ]);
      const found = new Map(rows.map((row) => [`${row.model}\0${row.id}`, row]));
      for (const read of batch) read.resolve(found.get(`${read.model}\0${read.id}`));
    } catch (error) {
      for (const read of batch) read.reject(error);
    }
  }

  return (model, id) =>
    new Promise((resolve, reject) => {
      if (waiting.length === 0) setImmediate(() => void flush());
      waiting.push({ model, id, resolve, reject });
    });
}
