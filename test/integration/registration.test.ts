import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';

const run = promisify(execFile);
let closed: TestServer;
let open: TestServer;

beforeAll(async () => {
  [closed, open] = await Promise.all([startTestServer(), startTestServer({ env: { DYNAMIC_REGISTRATION: 'true' } })]);
});
afterAll(async () => {
  await Promise.all([closed?.close(), open?.close()]);
});

const metadata = { redirect_uris: ['https://dynamic.example/cb'], client_name: 'Dynamic' };
const register = (server: TestServer, body: unknown, token?: string) =>
  fetch(`${server.issuer}/reg`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  });

describe('dynamic client registration', () => {
  it('is off by default', async () => {
    const discovery = (await (await fetch(`${closed.issuer}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
    expect(discovery['registration_endpoint']).toBeUndefined();
    expect((await register(closed, metadata)).status).toBe(404);
  });

  it('when enabled, needs an initial access token from the CLI and never lets a service make itself first-party', async () => {
    expect((await register(open, metadata)).status).toBe(401);

    const env = { ...process.env, DATABASE_URL: inject('databaseUrl'), LOG_LEVEL: 'warn' };
    const { stdout } = await run('node', ['dist/cli/index.js', 'clients', 'initial-token', '--ttl', '600', '--json'], { env });
    const { initialAccessToken } = JSON.parse(stdout) as { initialAccessToken: string };

    const selfPromoted = await register(open, { ...metadata, first_party: true }, initialAccessToken);
    expect(selfPromoted.status).toBe(400);
    expect(await selfPromoted.json()).toMatchObject({ error: 'invalid_client_metadata' });

    const created = await register(open, metadata, initialAccessToken);
    expect(created.status).toBe(201);
    const client = (await created.json()) as { client_id: string; client_secret: string; subject_type: string };
    expect(client.subject_type).toBe('pairwise');
    const { rows } = await open.db.query<{ metadata: { first_party: boolean; client_secret: string } }>(
      'SELECT metadata FROM clients WHERE id = $1',
      [client.client_id],
    );
    expect(rows[0]!.metadata.first_party).toBe(false);
    expect(rows[0]!.metadata.client_secret).toMatch(/^sha256:/); // only a digest is kept

    // The secret handed out at registration authenticates the service.
    const tokenResponse = await fetch(`${open.issuer}/token`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from(`${client.client_id}:${client.client_secret}`).toString('base64')}`,
      },
      body: 'grant_type=authorization_code&code=unknown&redirect_uri=https%3A%2F%2Fdynamic.example%2Fcb',
    });
    expect(await tokenResponse.json()).toMatchObject({ error: 'invalid_grant' }); // authenticated; only the code is wrong
  });
});
