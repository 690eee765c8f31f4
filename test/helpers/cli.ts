import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect, inject } from 'vitest';

const execFileAsync = promisify(execFile);
const bin = fileURLToPath(new URL('../../dist/cli/index.js', import.meta.url));

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the built bin (dist/) as an operator would, against the run's database. */
export async function idp(args: string[], options: { input?: string; env?: Record<string, string> } = {}): Promise<CliResult> {
  const run = execFileAsync(process.execPath, [bin, ...args], {
    // A minimal environment: nothing from the developer's shell can change the outcome.
    env: { PATH: process.env['PATH'] ?? '', DATABASE_URL: inject('databaseUrl'), LOG_LEVEL: 'warn', ...options.env },
    timeout: 20_000,
  });
  // Always close stdin, so a command reading it (--password-stdin) never waits for a terminal.
  run.child.stdin?.on('error', () => undefined);
  run.child.stdin?.end(options.input ?? '');
  try {
    const { stdout, stderr } = await run;
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failure = error as { code?: unknown; stdout?: string; stderr?: string };
    if (typeof failure.code !== 'number') throw error; // spawn failure or timeout, not an exit code
    return { code: failure.code, stdout: failure.stdout ?? '', stderr: failure.stderr ?? '' };
  }
}

/** Parses stdout of a successful --json call, showing stderr when the call failed. */
export function json<T = Record<string, unknown>>(result: CliResult): T {
  expect(result, result.stderr).toMatchObject({ code: 0, stderr: '' });
  return JSON.parse(result.stdout) as T;
}
