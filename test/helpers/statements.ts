import type { Database } from '../../src/db/index.js';

/**
 * The statements matching `pattern` that `db`'s pool sends while `work` runs, as one-line
 * texts. Every statement the app sends goes through `pool.query` (Database.query and the
 * rate limiter alike), as text or, prepared, as { name, text, values }.
 */
export async function statementsDuring(db: Database, pattern: RegExp, work: () => Promise<unknown>): Promise<string[]> {
  const pool = db.pool as unknown as { query: (...args: unknown[]) => unknown };
  const query = pool.query.bind(pool);
  const seen: string[] = [];
  pool.query = (...args: unknown[]) => {
    const text = typeof args[0] === 'string' ? args[0] : (args[0] as { text?: string } | undefined)?.text;
    if (pattern.test(String(text))) seen.push(String(text).replace(/\s+/g, ' ').trim());
    return query(...args);
  };
  try {
    await work();
  } finally {
    pool.query = query;
  }
  return seen;
}
