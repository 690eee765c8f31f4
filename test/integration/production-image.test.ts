import { execFile, spawn } from 'node:child_process';
import { cp, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { freePort, root, waitUntilReady } from '../helpers/processes.js';

/*
 * Base images cannot be pulled here, so the image itself is not built. What can be checked
 * is that the Dockerfile's final stage holds enough: its COPY lines are read, exactly those
 * paths are assembled in an empty folder, the production dependencies alone are installed
 * as that stage installs them, and the server started from there answers discovery.
 */

const run = promisify(execFile);
let folder: string | undefined;
afterAll(async () => {
  if (folder) await rm(folder, { recursive: true, force: true });
});

/** The final stage's instructions (after its last FROM). */
async function finalStage(): Promise<string[]> {
  const lines = (await readFile(join(root, 'Dockerfile'), 'utf8')).replace(/\\\n\s*/g, ' ').split('\n');
  const last = lines.map((line) => /^FROM\s/i.test(line)).lastIndexOf(true);
  return lines.slice(last).filter((line) => line.trim() && !line.trim().startsWith('#'));
}

describe('the production image', { timeout: 180_000 }, () => {
  it('runs as a non-root user with a health check on /healthz and SIGTERM to stop', async () => {
    const stage = await finalStage();
    expect(stage.some((line) => /^USER\s+(?!root)\w+/.test(line))).toBe(true);
    expect(stage.find((line) => line.startsWith('HEALTHCHECK'))).toContain('/healthz');
    expect(stage).toContain('STOPSIGNAL SIGTERM');
    expect(stage.find((line) => line.startsWith('RUN npm ci'))).toContain('--omit=dev');
  });

  it("starts from exactly the final stage's files and production dependencies, and answers discovery", async () => {
    const stage = await finalStage();
    // COPY [--from=build] <source…> <destination>: what the stage holds, relative to /app.
    const copied = stage
      .filter((line) => line.startsWith('COPY '))
      .flatMap((line) =>
        line
          .replace(/^COPY\s+(--from=\S+\s+)?/, '')
          .split(/\s+/)
          .slice(0, -1),
      )
      .map((source) => source.replace(/^\/app\//, ''));
    expect(copied.sort()).toEqual(['dist', 'migrations', 'package-lock.json', 'package.json', 'views']);
    folder = await mkdtemp(join(tmpdir(), 'idp-image-'));
    for (const path of copied) await cp(join(root, path), join(folder, path), { recursive: true });
    // The stage's install, command by command (the npm cache `npm ci` filled makes it offline).
    const install = stage
      .find((line) => line.startsWith('RUN npm ci'))!
      .replace(/^RUN\s+/, '')
      .split('&&');
    for (const command of install.map((part) => part.trim().split(/\s+/)).filter((words) => words[1] !== 'cache')) {
      const args = command[1] === 'ci' ? [...command.slice(1), '--prefer-offline'] : command.slice(1);
      await run('npm', args, { cwd: folder, env: { ...process.env, NODE_ENV: 'production' } });
    }

    const port = await freePort();
    const child = spawn(process.execPath, ['dist/server.js'], {
      cwd: folder,
      env: {
        PATH: process.env['PATH'] ?? '',
        NODE_ENV: 'production',
        PORT: String(port),
        HOST: '127.0.0.1',
        DATABASE_URL: inject('databaseUrl'),
        LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const output: string[] = [];
    for (const stream of [child.stdout, child.stderr]) stream.on('data', (chunk: Buffer) => output.push(chunk.toString()));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.on('exit', (code, signal) => resolve({ code, signal })),
    );
    try {
      await waitUntilReady({ name: 'the image', port, origin: `http://127.0.0.1:${port}`, child, output, exited });
      const discovery = await fetch(`http://127.0.0.1:${port}/.well-known/openid-configuration`);
      expect(discovery.status).toBe(200);
      expect(await discovery.json()).toMatchObject({ issuer: `http://localhost:${port}` });
      // The sign-in page, its stylesheet and the passkey script (from a production dependency) are served.
      expect((await fetch(`http://127.0.0.1:${port}/static/style.css`)).status).toBe(200);
      child.kill('SIGTERM');
      expect(await exited).toEqual({ code: 0, signal: null }); // drained and stopped on SIGTERM
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
