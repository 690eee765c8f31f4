import { mkdir, open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import type { Logger } from '../logger.js';
import { Unavailable } from '../errors.js';

/**
 * The embedded database: a real Postgres (PGlite, compiled to WASM) kept under a data
 * directory. Only one process may open the directory, so that process (the "owner")
 * serves it over the Postgres wire protocol on a loopback port and every process,
 * the owner included, talks to it with `pg`. A second process (say `npx idp` while
 * the server runs) finds the port in `server.json` and connects as a client.
 */
export interface EmbeddedPostgres {
  url: string;
  close(): Promise<void>;
}

interface ServerState {
  pid: number;
  port: number;
}

const OWNER_WAIT_MS = 30_000;

function urlForPort(port: number): string {
  return `postgres://postgres@127.0.0.1:${port}/postgres`;
}

function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function readState(file: string): Promise<ServerState | undefined> {
  try {
    const state = JSON.parse(await readFile(file, 'utf8')) as Partial<ServerState>;
    if (typeof state.pid === 'number' && typeof state.port === 'number') return { pid: state.pid, port: state.port };
  } catch {
    // absent or half-written: treated as no running owner
  }
  return undefined;
}

async function answersQueries(port: number): Promise<boolean> {
  const client = new pg.Client({ connectionString: urlForPort(port), connectionTimeoutMillis: 3000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function findRunningOwner(stateFile: string): Promise<ServerState | undefined> {
  const state = await readState(stateFile);
  if (state && isProcessAlive(state.pid) && (await answersQueries(state.port))) {
    return state;
  }
  return undefined;
}

/** Takes the owner lock, clearing a lock left by a process that died. False if someone alive holds it. */
async function tryTakeOwnerLock(lockFile: string): Promise<boolean> {
  try {
    const handle = await open(lockFile, 'wx');
    await handle.writeFile(String(process.pid));
    await handle.close();
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  const holder = Number.parseInt(await readFile(lockFile, 'utf8').catch(() => ''), 10);
  // A live holder that has not started serving within OWNER_WAIT_MS is not a real owner:
  // its pid was reused after a crash (PID 1 in a container restarts with the same pid).
  const lockAgeMs = Date.now() - (await stat(lockFile).catch(() => ({ mtimeMs: 0 }))).mtimeMs;
  if (Number.isInteger(holder) && holder > 0 && isProcessAlive(holder) && lockAgeMs < OWNER_WAIT_MS) return false;
  await rm(lockFile, { force: true });
  return tryTakeOwnerLock(lockFile);
}

async function startOwner(dataDir: string, stateFile: string, lockFile: string, logger: Logger): Promise<EmbeddedPostgres> {
  const { PGlite } = await import('@electric-sql/pglite');
  const { PGLiteSocketServer } = await import('@electric-sql/pglite-socket');
  const db = await PGlite.create({ dataDir: join(dataDir, 'pgdata') });
  const server = new PGLiteSocketServer({ db, host: '127.0.0.1', port: 0, maxConnections: 32 });
  await server.start();
  const port = Number(server.getServerConn().split(':').pop());
  await writeFile(stateFile, JSON.stringify({ pid: process.pid, port } satisfies ServerState));
  logger.info({ dataDir, port }, 'embedded Postgres serving on loopback');
  return {
    url: urlForPort(port),
    async close() {
      await server.stop();
      await db.close();
      await rm(stateFile, { force: true });
      await rm(lockFile, { force: true });
    },
  };
}

export async function openEmbeddedPostgres(directory: string, logger: Logger): Promise<EmbeddedPostgres> {
  const dataDir = resolve(directory);
  await mkdir(dataDir, { recursive: true });
  const stateFile = join(dataDir, 'server.json');
  const lockFile = join(dataDir, 'owner.lock');
  const deadline = Date.now() + OWNER_WAIT_MS;

  while (Date.now() < deadline) {
    const running = await findRunningOwner(stateFile);
    if (running) {
      logger.debug({ port: running.port, ownerPid: running.pid }, 'using the embedded Postgres served by another process');
      return { url: urlForPort(running.port), close: async () => undefined };
    }
    if (await tryTakeOwnerLock(lockFile)) {
      try {
        return await startOwner(dataDir, stateFile, lockFile, logger);
      } catch (error) {
        await rm(lockFile, { force: true });
        throw error;
      }
    }
    // Another live process holds the lock and is still starting: wait for its server.json.
    await sleep(200);
  }
  throw new Unavailable(`the embedded database in ${dataDir} is held by another process that does not answer`);
}
