import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestClient } from '../helpers/fixtures.js';
import { createAdapterFactory } from '../../src/oidc/adapter.js';
import { discoverClient } from '../helpers/oidc-client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { statementsDuring as sentStatements } from '../helpers/statements.js';

/*
 * Performance issue: the adapter's reads of tokens by (model, id), and its writes of tokens,
 * made in one turn of the event loop go to Postgres as one statement (src/db/same-turn-batch.ts).
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

/** How many statements matching `pattern` the server sends while `work` runs. */
const statementsDuring = async (pattern: RegExp, work: () => Promise<unknown>) => (await sentStatements(server.db, pattern, work)).length;

const tokenReadsDuring = (work: () => Promise<unknown>) => statementsDuring(/^\s*SELECT [\s\S]*FROM oidc_payloads/, work);
const tokenWritesDuring = (work: () => Promise<unknown>) => statementsDuring(/^\s*INSERT INTO oidc_payloads/, work);

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

describe('token writes', () => {
  it('made in one turn share a statement; each caller waits for its own row, and every row is stored', async () => {
    const AccessToken = new (createAdapterFactory(server.db, { seal: () => null, open: () => undefined }))('AccessToken');
    const ids = Array.from({ length: 8 }, (_, i) => `batched-write-${i}-${Date.now()}`);
    const writes = await tokenWritesDuring(() =>
      Promise.all(ids.map((id, i) => AccessToken.upsert(id, { accountId: `account-${i}`, clientId: 'batch' } as never, 60))),
    );
    expect(writes).toBe(1);
    const found = await Promise.all(ids.map((id) => AccessToken.find(id)));
    expect(found.map((payload) => payload?.accountId)).toEqual(ids.map((_, i) => `account-${i}`));
  });

  it('of one token twice in a turn are written one after the other, the last one kept', async () => {
    const AccessToken = new (createAdapterFactory(server.db, { seal: () => null, open: () => undefined }))('AccessToken');
    const id = `twice-${Date.now()}`;
    await Promise.all([
      AccessToken.upsert(id, { accountId: 'first', clientId: 'batch' } as never, 60),
      AccessToken.upsert(id, { accountId: 'second', clientId: 'batch' } as never, 60),
    ]);
    expect((await AccessToken.find(id))?.accountId).toBe('second');
  });
});
