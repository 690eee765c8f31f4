import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';

/** The built server (`npm test` builds dist first), started as it is deployed. */
export const root = fileURLToPath(new URL('../../', import.meta.url));
export const serverScript = `${root}dist/server.js`;
export const cliScript = `${root}dist/cli/index.js`;

export interface Instance {
  name: string;
  port: number;
  origin: string;
  child: ChildProcess;
  output: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

/** Settings every test instance shares: private-network fetch for test services, limits out of the way. */
export const instanceEnvironment = {
  HOST: '127.0.0.1',
  LOG_LEVEL: 'warn',
  ALLOW_PRIVATE_NETWORK_FETCH: 'true',
  LOGIN_MAX_FAILURES_PER_IP: '100000',
  SIGN_INS_PER_IP_PER_MINUTE: '100000',
  SIGN_INS_PER_ACCOUNT_PER_MINUTE: '100000',
  REGISTRATIONS_PER_IP_PER_HOUR: '100000',
  TOKEN_FAILURES_PER_IP_PER_MINUTE: '100000',
};

/** Spawns `node dist/server.js`; every started child is kept in `children` for the caller to kill. */
export function startInstance(
  children: ChildProcess[],
  name: string,
  settings: { port: number; issuer: string; databaseUrl: string; env?: Record<string, string> },
): Instance {
  const child = spawn(process.execPath, [serverScript], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      PATH: process.env['PATH'],
      ...instanceEnvironment,
      // Empty: the embedded database under EMBEDDED_DATA_DIR.
      ...(settings.databaseUrl ? { DATABASE_URL: settings.databaseUrl } : {}),
      PORT: String(settings.port),
      ISSUER: settings.issuer,
      ...settings.env,
    },
  });
  children.push(child);
  const output: string[] = [];
  child.stdout!.on('data', (chunk: Buffer) => output.push(chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => output.push(chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  return { name, port: settings.port, origin: `http://127.0.0.1:${settings.port}`, child, output, exited };
}

export async function waitUntilReady(instance: Instance, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (instance.child.exitCode !== null) {
      throw new Error(`${instance.name} exited with ${instance.child.exitCode} during start-up:\n${instance.output.join('')}`);
    }
    try {
      const response = await fetch(`${instance.origin}/readyz`);
      if (response.status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${instance.name} was not ready within ${timeoutMs} ms:\n${instance.output.join('')}`);
}

export function killAll(children: ChildProcess[]): void {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}
