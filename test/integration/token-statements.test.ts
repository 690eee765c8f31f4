import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RegisteredClient } from '../../src/clients/store.js';
import { createTestAccount, createTestClient } from '../helpers/fixtures.js';
import { signInAtService } from '../helpers/strong-sign-in.js';
import { UserAgent } from '../helpers/user-agent.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { statementsDuring } from '../helpers/statements.js';

/*
 * Performance issue: the tokens a token request issues are written in one statement, and the
 * answer waits for it (oidc/issued-writes.ts).
 */

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server?.close();
});

const REDIRECT_URI = 'http://127.0.0.1:9482/cb';
// RFC 7636's example pair: the test helpers' authorization URL sends this verifier's challenge.
const CODE_VERIFIER = 'dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk';
const tokenRowWrites = /^\s*INSERT INTO oidc_payloads/;

interface TokenAnswer {
  status: number;
  body: { access_token?: string; refresh_token?: string; id_token?: string };
}

async function tokenRequest(registered: RegisteredClient, form: Record<string, string>): Promise<TokenAnswer> {
  const confidential = registered.clientSecret !== undefined;
  const response = await fetch(`${server.issuer}/token`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      ...(confidential
        ? { authorization: `Basic ${Buffer.from(`${registered.client.clientId}:${registered.clientSecret}`).toString('base64')}` }
        : {}),
    },
    body: new URLSearchParams({ ...form, ...(confidential ? {} : { client_id: registered.client.clientId }) }),
  });
  return { status: response.status, body: (await response.json()) as TokenAnswer['body'] };
}

async function codeFor(registered: RegisteredClient): Promise<string> {
  const person = await createTestAccount(server.db);
  const signedIn = await signInAtService(new UserAgent(), server, registered, { email: person.email, password: person.password });
  return signedIn.callback!.searchParams.get('code')!;
}

async function userinfoStatus(accessToken: string): Promise<number> {
  return (await fetch(`${server.issuer}/me`, { headers: { authorization: `Bearer ${accessToken}` } })).status;
}

describe('a code exchanged for an access and a refresh token', () => {
  it('writes both in one statement, and both work once answered', async () => {
    const registered = await createTestClient(server.db, server.validator, { redirectUris: [REDIRECT_URI], firstParty: true });
    const code = await codeFor(registered);
    let answer: TokenAnswer | undefined;
    const writes = await statementsDuring(server.db, tokenRowWrites, async () => {
      answer = await tokenRequest(registered, {
        grant_type: 'authorization_code',
        code,
        redirect_uri: REDIRECT_URI,
        code_verifier: CODE_VERIFIER,
      });
    });
    expect(answer?.status).toBe(200);
    expect(answer?.body.access_token && answer.body.refresh_token && answer.body.id_token).toBeTruthy();
    expect(writes).toHaveLength(1);
    expect(await userinfoStatus(answer!.body.access_token!)).toBe(200);
    expect((await tokenRequest(registered, { grant_type: 'refresh_token', refresh_token: answer!.body.refresh_token! })).status).toBe(200);
  });
});

describe("a public client's refresh token rotated", () => {
  it('writes the new refresh token and the access token in one statement, and both work once answered', async () => {
    const registered = await createTestClient(server.db, server.validator, {
      redirectUris: [REDIRECT_URI],
      firstParty: true,
      public: true,
    });
    const code = await codeFor(registered);
    const issued = await tokenRequest(registered, {
      grant_type: 'authorization_code',
      code,
      redirect_uri: REDIRECT_URI,
      code_verifier: CODE_VERIFIER,
    });
    expect(issued.status).toBe(200);
    let rotated: TokenAnswer | undefined;
    const writes = await statementsDuring(server.db, tokenRowWrites, async () => {
      rotated = await tokenRequest(registered, { grant_type: 'refresh_token', refresh_token: issued.body.refresh_token! });
    });
    expect(rotated?.status).toBe(200);
    expect(rotated?.body.refresh_token).not.toBe(issued.body.refresh_token);
    expect(writes).toHaveLength(1);
    expect(await userinfoStatus(rotated!.body.access_token!)).toBe(200);
    expect((await tokenRequest(registered, { grant_type: 'refresh_token', refresh_token: rotated!.body.refresh_token! })).status).toBe(200);
  });
});
