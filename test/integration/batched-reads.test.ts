import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestClient } from '../helpers/fixtures.js';
import { discoverClient } from '../helpers/oidc-client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

/*
 * Performance issue: the adapter's reads of tokens by (model, id) made in one turn of the
 * event loop go to Postgres as one statement (src/oidc/batched-reads.ts).
 */

let server: TestServer;
let config: oidc.Configuration;

beforeAll(async () => {
  server = await startTestServer();
  const registered = await createTestClient(server.db, server.validator, {
    redirectUris: [],
    grantTypes: ['client_credentials'],
    scopes: ['openid'],
  });
  config = await discoverClient(server.issuer, registered.client.clientId, registered.clientSecret);
});
afterAll(async () => {
  await server?.close();
});

/** The token reads the server sends while `work` runs. */
async function tokenReadsDuring(work: () => Promise<unknown>): Promise<number> {
  const pool = server.db.pool;
  const query = pool.query.bind(pool) as (...args: unknown[]) => unknown;
  let reads = 0;
  (pool as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
    // A statement comes as its text, or (prepared) as { name, text, values }.
    const text = typeof args[0] === 'string' ? args[0] : (args[0] as { text?: string } | undefined)?.text;
    if (/^\s*SELECT [\s\S]*FROM oidc_payloads/.test(String(text))) reads += 1;
    return query(...args);
  };
  try {
    await work();
  } finally {
    (pool as unknown as { query: unknown }).query = query;
  }
  return reads;
}

describe('token reads', () => {
  it('look a token up as its three possible kinds in one statement (introspection without a hint)', async () => {
    const { access_token: token } = await oidc.clientCredentialsGrant(config);
    let answer: oidc.IntrospectionResponse | undefined;
    const reads = await tokenReadsDuring(async () => (answer = await oidc.tokenIntrospection(config, token)));
    expect(answer?.active).toBe(true);
    expect(reads).toBe(1);
  });

  it('share a statement between concurrent requests, each getting its own answer', async () => {
    const tokens = await Promise.all(Array.from({ length: 10 }, () => oidc.clientCredentialsGrant(config)));
    // One of them revoked: its answer, and only its, must say so.
    await oidc.tokenRevocation(config, tokens[3]!.access_token);
    let answers: oidc.IntrospectionResponse[] = [];
    const reads = await tokenReadsDuring(async () => {
      answers = await Promise.all([
        ...tokens.map((t) => oidc.tokenIntrospection(config, t.access_token)),
        oidc.tokenIntrospection(config, 'not-a-token-this-server-issued'),
      ]);
    });
    expect(answers.map((answer) => answer.active)).toEqual([true, true, true, false, true, true, true, true, true, true, false]);
    // Eleven requests, one statement each at most when none shares; they do.
    expect(reads).toBeLessThan(11);
  });
});
