import { execFile } from 'node:child_process';
import * as oidc from 'openid-client';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createTestAccount, createTestClient } from '../helpers/fixtures.js';
import { discoverClient, startAuthorization, exchangeCode } from '../helpers/oidc-client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { completeAuthorization, formActions, hiddenField, UserAgent } from '../helpers/user-agent.js';

const run = promisify(execFile);
let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server?.close();
});

describe('audit log', () => {
  it('records sign-in failure and success, consent and grant revocation without personal data', async () => {
    const account = await createTestAccount(server.db);
    const { client, clientSecret } = await createTestClient(server.db, server.validator, { redirectUris: ['http://127.0.0.1:9500/cb'] });
    const config = await discoverClient(server.issuer, client.clientId, clientSecret);
    const request = await startAuthorization(config, client.redirectUris[0]!, 'openid email');
    const agent = new UserAgent();

    const page = await agent.follow(request.url.href, client.redirectUris[0]!);
    if ('stoppedAt' in page) throw new Error('unexpected redirect');
    const login = server.issuer + formActions(page.body).find((a) => a.endsWith('/login'))!;
    await agent.request(login, { form: { _csrf: hiddenField(page.body, '_csrf'), email: account.email, password: 'wrong password' } });
    const { callback } = await completeAuthorization(agent, request.url.href, client.redirectUris[0]!, {
      email: account.email,
      password: account.password,
      consent: 'allow',
    });
    const tokens = await exchangeCode(config, callback, request);
    await oidc.tokenRevocation(config, tokens.refresh_token!); // revoking a refresh token revokes its grant
    await new Promise((resolve) => setTimeout(resolve, 200)); // the event is written after the response

    const { rows } = await server.db.query<{ event: string; outcome: string; actor: string | null; ip: string | null; details: unknown }>(
      'SELECT event, outcome, actor, ip, details FROM audit_events WHERE client_id = $1 ORDER BY id',
      [client.clientId],
    );
    expect(rows.map((r) => `${r.event}:${r.outcome}`)).toEqual([
      'sign_in:failure',
      'sign_in:success',
      'consent:success',
      'grant.revoked:success',
    ]);
    expect(rows[1]!.actor).toBe(account.id);
    expect(rows[0]!.actor).toBeNull();
    expect(rows.every((r) => r.ip === '127.0.0.1' || r.ip === '::ffff:127.0.0.1')).toBe(true);
    const stored = JSON.stringify(rows);
    expect(stored).not.toContain(account.email);
    expect(stored).not.toContain(account.password);
    expect(stored).not.toContain('wrong password');
  });

  it('lists events with the CLI, filtered by time and name, as JSON', async () => {
    const env = { ...process.env, DATABASE_URL: inject('databaseUrl'), LOG_LEVEL: 'warn' };
    const added = JSON.parse(
      (
        await run(
          'node',
          ['dist/cli/index.js', 'clients', 'add', '--name', 'audited', '--redirect-uri', 'http://127.0.0.1:9501/cb', '--json'],
          { env },
        )
      ).stdout,
    );
    const { stdout } = await run('node', ['dist/cli/index.js', 'audit', '--since', '10m', '--event', 'client.added', '--json'], { env });
    const events = JSON.parse(stdout) as { event: string; clientId: string; actor: string }[];
    expect(events).toContainEqual(expect.objectContaining({ event: 'client.added', clientId: added.clientId, actor: 'admin' }));
    expect(events.every((e) => e.event === 'client.added')).toBe(true);

    const bad = await run('node', ['dist/cli/index.js', 'audit', '--since', 'last tuesday'], { env }).catch(
      (error: { code: number; stderr: string }) => error,
    );
    expect(bad).toMatchObject({ code: 2 });
    expect((bad as { stderr: string }).stderr.trim().split('\n')).toHaveLength(1);
  });
});
