import { randomBytes } from 'node:crypto';
import type { Queryable } from '../db/index.js';
import type { EventUri } from './event-types.js';

/** A service's event stream (SSF 1.0): where its events are pushed, and which it wants. */
export interface EventStream {
  streamId: string;
  clientId: string;
  endpointUrl: string;
  eventsRequested: string[];
  status: 'enabled' | 'paused' | 'disabled';
  statusReason: string | null;
  description: string | null;
  createdAt: Date;
  updatedAt: Date;
}

export type StreamStatus = EventStream['status'];

type StreamRow = {
  stream_id: string;
  client_id: string;
  endpoint_url: string;
  events_requested: string[];
  status: StreamStatus;
  status_reason: string | null;
  description: string | null;
  created_at: Date;
  updated_at: Date;
};

const toStream = (row: StreamRow): EventStream => ({
  streamId: row.stream_id,
  clientId: row.client_id,
  endpointUrl: row.endpoint_url,
  eventsRequested: row.events_requested,
  status: row.status,
  statusReason: row.status_reason,
  description: row.description,
  createdAt: row.created_at,
  updatedAt: row.updated_at,
});

const columns = 'stream_id, client_id, endpoint_url, events_requested, status, status_reason, description, created_at, updated_at';

export async function streamOfClient(db: Queryable, clientId: string): Promise<EventStream | undefined> {
  const { rows } = await db.query<StreamRow>(`SELECT ${columns} FROM event_streams WHERE client_id = $1`, [clientId]);
  return rows[0] && toStream(rows[0]);
}

export interface StreamSettings {
  endpointUrl: string;
  eventsRequested: EventUri[];
  description?: string | null;
}

/** Creates the service's stream; undefined when it has one already (one stream per service). */
export async function createStream(db: Queryable, clientId: string, settings: StreamSettings): Promise<EventStream | undefined> {
  const { rows } = await db.query<StreamRow>(
    `INSERT INTO event_streams (client_id, stream_id, endpoint_url, events_requested, description)
     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (client_id) DO NOTHING RETURNING ${columns}`,
    [clientId, randomBytes(16).toString('base64url'), settings.endpointUrl, settings.eventsRequested, settings.description ?? null],
  );
  return rows[0] && toStream(rows[0]);
}

/** Creates the stream or replaces its settings (the CLI's --events-endpoint). */
export async function putStream(db: Queryable, clientId: string, settings: StreamSettings): Promise<EventStream> {
  const { rows } = await db.query<StreamRow>(
    `INSERT INTO event_streams (client_id, stream_id, endpoint_url, events_requested, description)
     VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (client_id) DO UPDATE SET endpoint_url = excluded.endpoint_url, events_requested = excluded.events_requested,
       description = coalesce(excluded.description, event_streams.description), updated_at = now()
     RETURNING ${columns}`,
    [clientId, randomBytes(16).toString('base64url'), settings.endpointUrl, settings.eventsRequested, settings.description ?? null],
  );
  return toStream(rows[0]!);
}

export async function updateStream(db: Queryable, clientId: string, changes: Partial<StreamSettings>): Promise<EventStream | undefined> {
  const { rows } = await db.query<StreamRow>(
    `UPDATE event_streams SET endpoint_url = coalesce($2, endpoint_url), events_requested = coalesce($3, events_requested),
       description = CASE WHEN $5 THEN $4 ELSE description END, updated_at = now()
     WHERE client_id = $1 RETURNING ${columns}`,
    [clientId, changes.endpointUrl ?? null, changes.eventsRequested ?? null, changes.description ?? null, 'description' in changes],
  );
  return rows[0] && toStream(rows[0]);
}

export async function setStreamStatus(
  db: Queryable,
  clientId: string,
  status: StreamStatus,
  reason: string | null,
): Promise<EventStream | undefined> {
  const { rows } = await db.query<StreamRow>(
    `UPDATE event_streams SET status = $2, status_reason = $3, updated_at = now() WHERE client_id = $1 RETURNING ${columns}`,
    [clientId, status, reason],
  );
  return rows[0] && toStream(rows[0]);
}

export async function deleteStream(db: Queryable, clientId: string): Promise<boolean> {
  const { rowCount } = await db.query('DELETE FROM event_streams WHERE client_id = $1', [clientId]);
  return rowCount === 1;
}

/** The enabled streams among these services that asked for this event. */
export async function streamsWanting(db: Queryable, clientIds: readonly string[], event: EventUri): Promise<EventStream[]> {
  if (clientIds.length === 0) return [];
  const { rows } = await db.query<StreamRow>(
    `SELECT ${columns} FROM event_streams WHERE client_id = ANY($1::text[]) AND status = 'enabled' AND $2 = ANY(events_requested)`,
    [clientIds, event],
  );
  return rows.map(toStream);
}
