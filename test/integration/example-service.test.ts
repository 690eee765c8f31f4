import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestAccount, createTestClient } from '../helpers/fixtures.js';
import { waitFor } from '../helpers/listener.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { completeAuthorization, UserAgent } from '../helpers/user-agent.js';

let server: TestServer;
let example: ChildProcess | undefined;
let exampleLog = '';

beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  example?.kill('SIGTERM');
  await server?.close();
});

describe('examples/relying-service', () => {
  it('signs in, shows the claims, and drops its session on back-channel logout after RP-initiated logout', async () => {
    const port = 9780;
    const origin = `http://localhost:${port}`;
    const account = await createTestAccount(server.db);
    const { client, clientSecret } = await createTestClient(server.db, server.validator, {
      redirectUris: [`${origin}/callback`],
      postLogoutRedirectUris: [`${origin}/`],
      backchannelLogoutUri: `${origin}/backchannel-logout`,
      scopes: ['openid', 'profile', 'email'],
    });
    example = spawn('node', ['examples/relying-service/dist/server.js'], {
      env: { ...process.env, ISSUER: server.issuer, EXAMPLE_PORT: String(port), CLIENT_ID: client.clientId, CLIENT_SECRET: clientSecret! },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    example.stdout!.on('data', (chunk: Buffer) => (exampleLog += chunk.toString()));
    example.stderr!.on('data', (chunk: Buffer) => (exampleLog += chunk.toString()));
    await waitFor(() => exampleLog.includes('example service on'), 15_000);

    const agent = new UserAgent();
    const { callback } = await completeAuthorization(agent, `${origin}/login`, `${origin}/callback`, {
      email: account.email,
      password: account.password,
      consent: 'allow',
    });
    await agent.follow(callback.href, 'http://never/');
    const home = await agent.request(`${origin}/`);
    expect(home.body).toContain('Signed in');
    expect(home.body).toContain(account.email);

    const logout = await agent.request(`${origin}/logout`);
    const confirm = await agent.request(logout.location!);
    const xsrf = /name="xsrf" value="([^"]+)"/.exec(confirm.body)![1]!;
    const action = new URL(/action="([^"]+)"/.exec(confirm.body)![1]!, server.issuer).href;
    await agent.follow(action, `${origin}/`, { form: { xsrf, logout: 'yes' } });
    await waitFor(() => exampleLog.includes('back-channel logout for sid='), 10_000);
    expect((await agent.request(`${origin}/`)).body).toContain('Sign in with Group ID');
  });
});
