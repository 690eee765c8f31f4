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

    // The refused self-promotion gave its use back; the registration spent it.
    expect((await register(open, { ...metadata, client_name: 'Again' }, initialAccessToken)).status).toBe(401);
  });

  async function initialToken(...extra: string[]): Promise<string> {
    const env = { ...process.env, DATABASE_URL: inject('databaseUrl'), LOG_LEVEL: 'warn' };
    const { stdout } = await run('node', ['dist/cli/index.js', 'clients', 'initial-token', '--json', ...extra], { env });
    return (JSON.parse(stdout) as { initialAccessToken: string }).initialAccessToken;
  }

  it('takes https redirect URIs only (loopback IPs or private-use schemes for native apps)', async () => {
    const token = await initialToken('--uses', '10');
    for (const body of [
      { redirect_uris: ['http://dynamic.example/cb'] },
      { redirect_uris: ['https://dynamic.example/cb'], post_logout_redirect_uris: ['http://dynamic.example/bye'] },
      { redirect_uris: ['https://dynamic.example/cb'], backchannel_logout_uri: 'http://dynamic.example/logout' },
      { application_type: 'native', redirect_uris: ['http://localhost:8123/cb'] },
      { application_type: 'web', redirect_uris: ['http://127.0.0.1:8123/cb'] },
    ]) {
      const refused = await register(open, { client_name: 'Plain http', ...body }, token);
      expect(refused.status, JSON.stringify(body)).toBe(400);
      expect(((await refused.json()) as { error: string }).error).toMatch(/^invalid_(redirect_uri|client_metadata)$/);
    }
    for (const redirect of ['http://127.0.0.1:8123/cb', 'http://[::1]:8123/cb', 'com.example.app:/cb', 'https://app.example/cb']) {
      const created = await register(
        open,
        { client_name: 'Native', application_type: 'native', redirect_uris: [redirect], token_endpoint_auth_method: 'none' },
        token,
      );
      expect(created.status, redirect).toBe(201);
    }
  });

  it('registers the supported subset of the grant and response types asked for, says so, and refuses only when none is left', async () => {
    const token = await initialToken('--uses', '5');
    const mixed = await register(
      open,
      {
        ...metadata,
        grant_types: ['authorization_code', 'implicit', 'refresh_token', 'urn:example:made-up'],
        response_types: ['code', 'id_token token'],
      },
      token,
    );
    expect(mixed.status).toBe(201);
    const registered = (await mixed.json()) as { grant_types: string[]; response_types: string[] };
    expect(registered.grant_types.sort()).toEqual(['authorization_code', 'refresh_token']);
    expect(registered.response_types).toEqual(['code']);

    const nothingLeft = await register(open, { ...metadata, grant_types: ['implicit'], response_types: ['id_token'] }, token);
    expect(nothingLeft.status).toBe(400);
    expect(await nothingLeft.json()).toMatchObject({
      error: 'invalid_client_metadata',
      error_description: expect.stringContaining('none of the requested'),
    });
  });

  it('gives a service that asks for public subjects pairwise ones', async () => {
    const created = await register(open, { ...metadata, subject_type: 'public' }, await initialToken());
    expect(created.status).toBe(201);
    expect(((await created.json()) as { subject_type: string }).subject_type).toBe('pairwise');
  });

  it('spends an initial access token once unless it was made with --uses N, also under concurrent registrations', async () => {
    const single = await initialToken();
    const statuses = await Promise.all(
      Array.from({ length: 5 }, (_, i) => register(open, { ...metadata, client_name: `Racer ${i}` }, single).then((r) => r.status)),
    );
    expect(statuses.filter((status) => status === 201)).toHaveLength(1);
    expect(statuses.filter((status) => status === 401)).toHaveLength(4);

    const twice = await initialToken('--uses', '2');
    const results = [];
    for (let i = 0; i < 3; i += 1) results.push((await register(open, { ...metadata, client_name: `Twice ${i}` }, twice)).status);
    expect(results).toEqual([201, 201, 401]);
  });
});
