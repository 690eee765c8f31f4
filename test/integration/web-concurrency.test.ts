import { execFile, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { createTestClient } from '../helpers/fixtures.js';
import { freePort, killAll, startInstance, waitUntilReady } from '../helpers/processes.js';
import { testDatabase } from '../helpers/server.js';

/*
 * WEB_CONCURRENCY=2: one primary and two worker processes sharing the port. Requests are
 * answered by both, the sweeper runs once per database, the metrics of both are served
 * together, SIGTERM drains every worker, and the embedded database works the same way.
 */

const run = promisify(execFile);
const children: ChildProcess[] = [];
const folders: string[] = [];
const db = testDatabase();
afterAll(async () => {
  await db.close();
  killAll(children);
  await Promise.all(folders.map((folder) => rm(folder, { recursive: true, force: true })));
});

async function workersOf(pid: number): Promise<number[]> {
  const { stdout } = await run('ps', ['-o', 'pid=', '--ppid', String(pid)]).catch(() => ({ stdout: '' }));
  return stdout
    .split('\n')
    .map((line) => Number(line.trim()))
    .filter((value) => value > 0);
}

async function startCluster(env: Record<string, string>, databaseUrl = inject('databaseUrl')) {
  const [port, metricsPort] = [await freePort(), await freePort()];
  const instance = startInstance(children, 'cluster', {
    port,
    issuer: `http://127.0.0.1:${port}`,
    databaseUrl,
    env: { WEB_CONCURRENCY: '2', METRICS_PORT: String(metricsPort), ...env },
  });
  await waitUntilReady(instance);
  return { instance, metricsPort };
}

describe('WEB_CONCURRENCY', { timeout: 90_000 }, () => {
  it('runs two workers that share the port and serve the whole flow, their metrics together, and drain on SIGTERM', async () => {
    const { instance, metricsPort } = await startCluster({});
    const workers = await workersOf(instance.child.pid!);
    expect(workers).toHaveLength(2);

    // Many connections, each a fresh one: the primary hands them to both workers.
    const answers = await Promise.all(
      Array.from({ length: 40 }, () => fetch(`${instance.origin}/.well-known/openid-configuration`, { headers: { connection: 'close' } })),
    );
    expect(answers.every((answer) => answer.status === 200)).toBe(true);

    // Tokens issued over fresh connections, so both workers count some: the primary's
    // metrics add up what every worker counted (its own registry would say 0).
    const { client, clientSecret } = await createTestClient(db, async () => undefined, {
      grantTypes: ['client_credentials'],
      redirectUris: [],
    });
    const basic = `Basic ${Buffer.from(`${encodeURIComponent(client.clientId)}:${encodeURIComponent(clientSecret!)}`).toString('base64')}`;
    const tokens = await Promise.all(
      Array.from({ length: 12 }, () =>
        fetch(`${instance.origin}/token`, {
          method: 'POST',
          headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded', connection: 'close' },
          body: 'grant_type=client_credentials',
        }),
      ),
    );
    expect(tokens.map((answer) => answer.status)).toEqual(Array(12).fill(200));
    // A worker busy past the aggregator's timeout fails one scrape with 503; the next succeeds.
    let metrics = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
    for (let attempt = 0; metrics.status === 503 && attempt < 5; attempt += 1) {
      metrics = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
    }
    expect(metrics.status).toBe(200);
    const issued = /^idp_tokens_issued_total\{[^}]*grant_type="client_credentials"[^}]*\} (\d+)$/m.exec(await metrics.text());
    expect(Number(issued?.[1])).toBe(12);

    instance.child.kill('SIGTERM');
    expect(await instance.exited).toEqual({ code: 0, signal: null });
    for (const pid of workers) expect(() => process.kill(pid, 0), `worker ${pid} still runs`).toThrow();
  });

  it('restarts a worker that dies', async () => {
    const { instance } = await startCluster({});
    const [first] = await workersOf(instance.child.pid!);
    process.kill(first!, 'SIGKILL');
    const deadline = Date.now() + 20_000;
    let workers: number[] = [];
    while (Date.now() < deadline) {
      workers = await workersOf(instance.child.pid!);
      if (workers.length === 2 && !workers.includes(first!)) break;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    expect(workers).toHaveLength(2);
    expect(workers).not.toContain(first);
    // Fresh connections: a pooled keep-alive one may have been the killed worker's. Until one
    // worker listens again (the other may still have been starting when the first was killed),
    // the primary refuses connections.
    const health = () =>
      fetch(`${instance.origin}/healthz`, { headers: { connection: 'close' } }).then(
        (answer) => answer.status,
        () => 0,
      );
    let status = await health();
    while (status !== 200 && Date.now() < deadline + 10_000) status = await health();
    expect(status).toBe(200);
    instance.child.kill('SIGTERM');
    await instance.exited;
  });

  it('works on the embedded database, which the primary serves to its workers', async () => {
    const folder = await mkdtemp(join(tmpdir(), 'idp-cluster-'));
    folders.push(folder);
    const port = await freePort();
    const instance = startInstance(children, 'embedded cluster', {
      port,
      issuer: `http://127.0.0.1:${port}`,
      databaseUrl: '',
      env: { WEB_CONCURRENCY: '2', EMBEDDED_DATA_DIR: folder },
    });
    await waitUntilReady(instance, 60_000);
    const answers = await Promise.all(
      Array.from({ length: 20 }, () => fetch(`${instance.origin}/jwks`, { headers: { connection: 'close' } })),
    );
    expect(answers.map((answer) => answer.status)).toEqual(Array(20).fill(200));
    instance.child.kill('SIGTERM');
    expect(await instance.exited).toEqual({ code: 0, signal: null });
  });
});
