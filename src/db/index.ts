import { AsyncLocalStorage } from 'node:async_hooks';
import { createHash } from 'node:crypto';
import pg from 'pg';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import { Unavailable } from '../errors.js';
import { inSpan, SpanKind } from '../telemetry.js';
import { openEmbeddedPostgres, type EmbeddedPostgres } from './embedded.js';

export type Row = Record<string, unknown>;

export interface QueryOptions {
  /**
   * false: planned at every execution, never prepared. For a statement whose best plan depends
   * on its arguments (how many keys an array brings) and on the table's size: a plan made once,
   * while the table was small, would scan the whole table for as long as the connection lives.
   */
  prepare?: boolean;
}

/** Anything SQL can be sent to: the pool, or one connection inside a transaction. */
export interface Queryable {
  query<R extends Row = Row>(text: string, values?: readonly unknown[], options?: QueryOptions): Promise<pg.QueryResult<R>>;
}

export interface Database extends Queryable {
  /** Runs `work` in one transaction: committed when it resolves, rolled back when it throws. */
  transaction<T>(work: (tx: Queryable) => Promise<T>): Promise<T>;
  /** True when a trivial query succeeds; used by /readyz. */
  isReachable(): Promise<boolean>;
  readonly pool: pg.Pool;
  /** Where the data lives, for start-up messages (never includes a password). */
  readonly description: string;
  close(): Promise<void>;
}

// Connection-level failures (server gone, refused, shutting down) are reported as
// Unavailable so callers answer 503 instead of 500.
const unavailableCodes = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', '57P01', '57P02', '57P03', '53300']);

function isConnectionFailure(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: string }).code;
  if (code && unavailableCodes.has(code)) return true;
  return /Connection terminated|connect ECONNREFUSED|timeout exceeded when trying to connect|Client has encountered a connection error/i.test(
    error.message,
  );
}

function translateError(error: unknown): never {
  if (isConnectionFailure(error)) {
    throw new Unavailable('the database is not reachable');
  }
  throw error;
}

/** Told about every statement sent through a Database: its kind, how long it took and whether it failed. */
export type QueryObserver = (operation: string, seconds: number, failed: boolean) => void;

let queryObserver: QueryObserver | undefined;

const unobserved = new AsyncLocalStorage<true>();

/**
 * Runs `work` with its statements hidden from the query observer. For workflows whose
 * statements depend on whether an address has an account (a password-reset request): the
 * metrics must not tell an observer what the page does not.
 */
export function withoutQueryMetrics<T>(work: () => Promise<T>): Promise<T> {
  return unobserved.run(true, work);
}

/**
 * Installs the process-wide observer of query latency (the metrics layer sets it; the db
 * layer must not import it). Pass undefined to remove it.
 */
export function observeQueries(observer: QueryObserver | undefined): void {
  queryObserver = observer;
}

const statementKinds = /^\s*(select|insert|update|delete|with|begin|commit|rollback)\b/i;

/** The statement's leading keyword (select, insert, …): a label of bounded cardinality. */
export function queryOperation(text: string): string {
  return statementKinds.exec(text)?.[1]?.toLowerCase() ?? 'other';
}

/** A span per statement (its kind, never its text or values), and its duration for the metrics. */
function timed<R>(text: string, run: () => Promise<R>): Promise<R> {
  const operation = queryOperation(text);
  return inSpan(
    `db ${operation}`,
    { kind: SpanKind.CLIENT, attributes: { 'db.system.name': 'postgresql', 'db.operation.name': operation } },
    () => observed(text, run),
  );
}

async function observed<R>(text: string, run: () => Promise<R>): Promise<R> {
  const observer = queryObserver;
  if (!observer || unobserved.getStore()) return run();
  const started = process.hrtime.bigint();
  let failed = true;
  try {
    const result = await run();
    failed = false;
    return result;
  } finally {
    observer(queryOperation(text), Number(process.hrtime.bigint() - started) / 1e9, failed);
  }
}

/**
 * Times promise-style `pool.query` calls, so statements sent on `db.pool` by code outside
 * this module (the rate limiter) are observed as well as `Database.query`.
 */
function timePoolQueries(pool: pg.Pool): void {
  const query = pool.query.bind(pool) as (...args: unknown[]) => unknown;
  (pool as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
    const [statement] = args;
    const text = typeof statement === 'string' ? statement : (statement as { text?: unknown } | undefined)?.text;
    if (typeof text !== 'string' || args.some((arg) => typeof arg === 'function')) return query(...args);
    return timed(text, () => query(...args) as Promise<unknown>);
  };
}

function describeUrl(url: string): string {
  const parsed = new URL(url);
  parsed.password = '';
  return `${parsed.protocol}//${parsed.username ? `${parsed.username}@` : ''}${parsed.host}${parsed.pathname}`;
}

/**
 * Names for statements, so each connection parses and plans a statement once and then only
 * binds and executes it. Bounded: SQL built at run time beyond the first 500 distinct texts
 * goes unnamed rather than growing every backend's statement cache.
 */
function statementNamer(): (text: string) => string | undefined {
  const names = new Map<string, string>();
  return (text) => {
    let name = names.get(text);
    if (name === undefined && names.size < 500) {
      name = `idp_${createHash('sha256').update(text).digest('base64url').slice(0, 22)}`;
      names.set(text, name);
    }
    return name;
  };
}

export function createPostgresDatabase(
  url: string,
  options: {
    poolMax: number;
    logger: Logger;
    onClose?: () => Promise<void>;
    /** Off for the embedded database: its connections share one session, where a name prepared by one clashes with another's. */
    preparedStatements?: boolean;
  },
): Database {
  const pool = new pg.Pool({
    connectionString: url,
    max: options.poolMax,
    connectionTimeoutMillis: 5000,
    idleTimeoutMillis: 30000,
    application_name: 'idp',
  });
  // An idle client losing its connection (database restart) must not crash the process.
  pool.on('error', (error) => options.logger.warn({ err: error.message }, 'idle database connection lost'));
  timePoolQueries(pool);
  const nameOf = options.preparedStatements === false ? () => undefined : statementNamer();
  // Only parameterised statements: a script of several commands (a migration) cannot be prepared.
  const statement = (text: string, values: readonly unknown[] | undefined, options: QueryOptions | undefined) => {
    const name = values === undefined || options?.prepare === false ? undefined : nameOf(text);
    return name === undefined ? { text, values: values as unknown[] | undefined } : { name, text, values: values as unknown[] | undefined };
  };

  return {
    pool,
    description: describeUrl(url),
    async query(text, values, options) {
      try {
        return await pool.query(statement(text, values, options));
      } catch (error) {
        translateError(error);
      }
    },
    async transaction(work) {
      let client: pg.PoolClient;
      try {
        client = await pool.connect();
      } catch (error) {
        translateError(error);
      }
      let broken = false;
      try {
        await timed('BEGIN', () => client.query('BEGIN'));
        const result = await work({
          query: (text, values, options) => timed(text, () => client.query(statement(text, values, options))),
        });
        await timed('COMMIT', () => client.query('COMMIT'));
        return result;
      } catch (error) {
        await client.query('ROLLBACK').catch(() => {
          broken = true;
        });
        translateError(error);
      } finally {
        client.release(broken);
      }
    },
    async isReachable() {
      try {
        await pool.query('SELECT 1');
        return true;
      } catch {
        return false;
      }
    },
    async close() {
      await pool.end();
      await options.onClose?.();
    },
  };
}

/**
 * Opens the configured database: `DATABASE_URL` when set, otherwise the embedded Postgres
 * under `EMBEDDED_DATA_DIR`, reached over the same wire protocol so there is one code path.
 */
export async function openDatabase(config: Config, logger: Logger): Promise<Database> {
  if (config.databaseUrl) {
    return createPostgresDatabase(config.databaseUrl, {
      poolMax: config.databasePoolMax,
      logger,
      preparedStatements: config.databasePreparedStatements,
    });
  }
  const embedded: EmbeddedPostgres = await openEmbeddedPostgres(config.embeddedDataDir, logger);
  return createPostgresDatabase(embedded.url, {
    poolMax: Math.min(config.databasePoolMax, 8),
    logger,
    onClose: embedded.close,
    preparedStatements: false,
  });
}
