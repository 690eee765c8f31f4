import { randomUUID } from 'node:crypto';
import pg from 'pg';
import type { Logger } from '../logger.js';
import type { Database } from './index.js';

/** What Postgres announces row changes of: two tables (migrations/0023), and the protocol artefacts' storage (0026). */
export type NotifiedTable = 'accounts' | 'clients' | 'artefacts';

const channel = 'idp_changes';

export interface ChangeNotices {
  /** True while the listening connection is up and proven: only then may a cache keep what it read. */
  readonly live: boolean;
  /** `onChange(id)` for each changed row of `table`; `onChange(undefined)` when notices may have been missed. */
  subscribe(table: NotifiedTable, onChange: (id: string | undefined) => void): void;
  stop(): Promise<void>;
}

/**
 * One connection per process that LISTENs for row changes, so that in-process caches of
 * read-mostly rows (clients, accounts) drop an entry the moment any instance, the CLI or a
 * hand-written UPDATE changes it. Without the connection nothing may be cached: when it is
 * lost every subscriber is told to drop everything, and it is opened again with backoff.
 * It counts as live only once a notice it sent itself has come back (a proxy or the embedded
 * database's multiplexer may accept LISTEN yet never deliver).
 */
export function listenForChanges(db: Database, logger: Logger): ChangeNotices {
  const subscribers = new Map<NotifiedTable, ((id: string | undefined) => void)[]>();
  let client: pg.Client | undefined;
  let live = false;
  let stopped = false;
  let retryMs = 250;
  let retryTimer: NodeJS.Timeout | undefined;

  const dropEverything = () => {
    for (const handlers of subscribers.values()) for (const handler of handlers) handler(undefined);
  };

  const lost = (reason: string) => (connection: pg.Client) => {
    if (connection !== client) return;
    client = undefined;
    if (live) logger.warn({ reason }, 'lost the change-notice connection: caches emptied until it is back');
    live = false;
    dropEverything();
    connection.end().catch(() => undefined);
    if (stopped) return;
    retryTimer = setTimeout(() => void connect(), retryMs);
    retryTimer.unref();
    retryMs = Math.min(retryMs * 2, 10_000);
  };

  async function connect(): Promise<void> {
    const connection = new pg.Client(db.pool.options);
    client = connection;
    const ping = `ping:${randomUUID()}`;
    let answered: () => void = () => undefined;
    const pingAnswered = new Promise<void>((resolve) => (answered = resolve));
    connection.on('notification', (message) => {
      const payload = message.payload ?? '';
      if (payload === ping) return answered();
      const separator = payload.indexOf(':');
      const table = payload.slice(0, separator) as NotifiedTable;
      for (const handler of subscribers.get(table) ?? []) handler(payload.slice(separator + 1));
    });
    connection.on('error', (error) => lost(error.message)(connection));
    connection.on('end', () => lost('connection ended')(connection));
    try {
      await connection.connect();
      await connection.query(`LISTEN ${channel}`);
      await connection.query('SELECT pg_notify($1, $2)', [channel, ping]);
      const timeout = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), 2000).unref());
      if ((await Promise.race([pingAnswered, timeout])) === 'timeout') {
        logger.warn('the database accepts LISTEN but delivers no notices: running without in-process caches');
        client = undefined;
        await connection.end().catch(() => undefined);
        return;
      }
      if (connection !== client || stopped) return;
      live = true;
      retryMs = 250;
    } catch (error) {
      lost(error instanceof Error ? error.message : String(error))(connection);
    }
  }

  void connect();
  return {
    get live() {
      return live;
    },
    subscribe(table, onChange) {
      subscribers.set(table, [...(subscribers.get(table) ?? []), onChange]);
    },
    async stop() {
      stopped = true;
      live = false;
      clearTimeout(retryTimer);
      const connection = client;
      client = undefined;
      await connection?.end().catch(() => undefined);
    },
  };
}

/** A lookup or write in flight for one id: a notice for that id meanwhile makes its result unfit to keep. */
interface Watch {
  stale: boolean;
}

/**
 * Rows by id, kept while change notices are live and dropped when one names them. A value
 * read or written while a notice for its id (or a loss of the connection) came in is returned
 * but not kept: it may predate the change. Entries live in two generations: when the newer
 * holds half of `maxEntries`, the older is dropped whole and the newer takes its place, so
 * a full cache sheds its least recently used half at once rather than paying for each eviction.
 */
export class NotifiedCache<V> {
  private newer = new Map<string, V>();
  private older = new Map<string, V>();
  private readonly watches = new Map<string, Set<Watch>>();

  constructor(
    private readonly notices: ChangeNotices,
    table: NotifiedTable,
    private readonly maxEntries = 10_000,
  ) {
    notices.subscribe(table, (id) => (id === undefined ? this.forgetAll() : this.forget(id)));
  }

  async get(id: string, load: () => Promise<V | undefined>): Promise<V | undefined> {
    const kept = this.newer.get(id) ?? this.older.get(id);
    if (kept !== undefined && this.notices.live) {
      if (!this.newer.has(id)) this.keep(id, kept);
      return kept;
    }
    // Unknown ids are not remembered: a row created a moment ago must be found at once.
    return this.keepingResult(id, load);
  }

  /** For writes made by this process whose result is the row as stored now: kept once written. */
  async write(id: string, write: () => Promise<V>): Promise<V> {
    this.forget(id);
    return (await this.keepingResult(id, write)) as V;
  }

  /** For writes made by this process, before their notice comes back. */
  forget(id: string): void {
    this.newer.delete(id);
    this.older.delete(id);
    for (const watch of this.watches.get(id) ?? []) watch.stale = true;
  }

  /** Drops every entry `matches` holds for, and marks every lookup in flight unfit to keep. */
  forgetWhere(matches: (value: V) => boolean): void {
    for (const entries of [this.newer, this.older]) for (const [id, value] of entries) if (matches(value)) entries.delete(id);
    this.markAllStale();
  }

  private forgetAll(): void {
    this.newer = new Map();
    this.older = new Map();
    this.markAllStale();
  }

  private markAllStale(): void {
    for (const watches of this.watches.values()) for (const watch of watches) watch.stale = true;
  }

  private async keepingResult<R extends V | undefined>(id: string, work: () => Promise<R>): Promise<R> {
    const watch: Watch = { stale: false };
    const watches = this.watches.get(id) ?? new Set<Watch>();
    watches.add(watch);
    this.watches.set(id, watches);
    let value: R;
    try {
      value = await work();
    } finally {
      watches.delete(watch);
      if (watches.size === 0) this.watches.delete(id);
    }
    if (value !== undefined && this.notices.live && !watch.stale) this.keep(id, value);
    return value;
  }

  /** Into the newer generation; an entry in use moves there from the older. */
  private keep(id: string, value: V): void {
    if (this.newer.size >= this.maxEntries / 2) {
      this.older = this.newer;
      this.newer = new Map();
    }
    this.older.delete(id);
    this.newer.set(id, value);
  }
}
