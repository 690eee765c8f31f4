import type { ChildProcess } from 'node:child_process';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { wantsPrettyLogs } from '../../src/logger.js';
import { freePort, killAll, startInstance, waitUntilReady } from '../helpers/processes.js';

/* Development logs a person can read in a terminal; JSON lines for machines. */

const children: ChildProcess[] = [];
afterAll(() => killAll(children));

async function startupOutput(format: string): Promise<string> {
  const port = await freePort();
  const instance = startInstance(children, `log-${format}`, {
    port,
    issuer: `http://127.0.0.1:${port}`,
    databaseUrl: inject('databaseUrl'),
    env: { LOG_FORMAT: format, LOG_LEVEL: 'info' },
  });
  // The log goes to stdout (stderr carries Node's own warnings).
  let stdout = '';
  instance.child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  await waitUntilReady(instance);
  instance.child.kill('SIGTERM');
  await instance.exited;
  return stdout;
}

describe('log lines', () => {
  it('are readable in a terminal and JSON otherwise, unless LOG_FORMAT says', () => {
    expect(wantsPrettyLogs('auto', true)).toBe(true);
    expect(wantsPrettyLogs('auto', false)).toBe(false);
    expect(wantsPrettyLogs('json', true)).toBe(false);
    expect(wantsPrettyLogs('pretty', false)).toBe(true);
  });

  it('are one JSON object per line with LOG_FORMAT=json (and by default when not a terminal)', async () => {
    for (const format of ['json', 'auto']) {
      const lines = (await startupOutput(format)).split('\n').filter(Boolean);
      expect(lines.length, format).toBeGreaterThan(0);
      for (const line of lines) expect(() => JSON.parse(line), line).not.toThrow();
    }
  });

  it('are readable lines with LOG_FORMAT=pretty: time, level and message, no JSON', async () => {
    const lines = (await startupOutput('pretty')).split('\n').filter(Boolean);
    expect(
      lines.some((line) => /^\[\d{2}:\d{2}:\d{2}\.\d{3}\] INFO: /.test(line)),
      lines.join('\n'),
    ).toBe(true);
    expect(lines.filter((line) => line.startsWith('{'))).toEqual([]);
  });
});
