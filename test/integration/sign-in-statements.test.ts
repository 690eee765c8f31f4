import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RegisteredClient } from '../../src/clients/store.js';
import { createTestAccount, createTestClient } from '../helpers/fixtures.js';
import { openServiceLogin } from '../helpers/service-sign-in.js';
import { signInToAccountPages } from '../helpers/self-service.js';
import { confirmEnrolment, deleteTotpFactor, enrolmentSecret, useTotpCode } from '../../src/factors/totp.js';
import { keyRing } from '../../src/oidc/keys.js';
import { ageAuthenticatorApp, setUpAuthenticatorApp, signInAtService, totpCode } from '../helpers/strong-sign-in.js';
import { UserAgent } from '../helpers/user-agent.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { statementsDuring as sentStatements } from '../helpers/statements.js';

/*
 * Performance issue: a password sign-in reads the account's factors in the statement that finds
 * the account by its address, and its interaction once; with an authenticator app, each page of the
 * second step reads the factors in the statement that finds the pending sign-in.
 */

let server: TestServer;
let registered: RegisteredClient;

beforeAll(async () => {
  server = await startTestServer();
  registered = await createTestClient(server.db, server.validator, { redirectUris: ['http://127.0.0.1:9481/cb'] });
});
afterAll(async () => {
  await server?.close();
});

const statementsDuring = (pattern: RegExp, work: () => Promise<unknown>) => sentStatements(server.db, pattern, work);

const onFactorTables = /\b(passkeys|totp_factors|recovery_codes)\b/;
const onAccountsOrPendingSignIns = /\b(accounts|pending_sign_ins)\b/;

describe('a password sign-in without a second factor', () => {
  /** The statements matching `pattern` while a right password is submitted; it must lead back to the service. */
  async function submittedPassword(pattern: RegExp): Promise<string[]> {
    const person = await createTestAccount(server.db);
    const login = await openServiceLogin(server, registered);
    let answer: Awaited<ReturnType<typeof login.submit>> | undefined;
    const statements = await statementsDuring(pattern, async () => {
      answer = await login.submit(person.email, person.password);
    });
    expect(answer?.status).toBe(303);
    expect(answer?.headers.get('location')).toMatch(/\/auth\//);
    return statements;
  }

  it('reads the factor tables in the statement that finds the account by its address, and goes back to the service', async () => {
    const findsTheAccount = /^SELECT id, email\b.* FROM accounts a WHERE email_key = \$1$/;
    expect(await submittedPassword(onFactorTables)).toEqual([expect.stringMatching(findsTheAccount)]);
    // Nothing else reads the account or its factors while the password is checked.
    expect(await submittedPassword(onAccountsOrPendingSignIns)).toEqual([expect.stringMatching(findsTheAccount)]);
  });

  it('counts its attempt in one statement and clears the failure counters in one more', async () => {
    expect(await submittedPassword(/\brate_limits\b/)).toEqual([
      expect.stringMatching(/^WITH first AS \(/),
      expect.stringMatching(/^WITH forgotten AS \(DELETE/),
    ]);
  });

  it('reads its interaction once, at the start, and saves it with the result', async () => {
    // Only the interaction is read or written here: no session, no grant yet.
    expect(await submittedPassword(/\boidc_payloads\b/)).toEqual([
      expect.stringMatching(/^SELECT payload\b/),
      expect.stringMatching(/^INSERT INTO oidc_payloads\b/),
    ]);
  });
});

/** An account with an authenticator app set up long enough ago that its codes are accepted now. */
async function personWithAuthenticatorApp() {
  const person = await createTestAccount(server.db);
  const accountPages = new UserAgent();
  await signInToAccountPages(accountPages, server.issuer, person.email, person.password);
  const { secret } = await setUpAuthenticatorApp(accountPages, server);
  await ageAuthenticatorApp(server, person.id);
  return { person, secret };
}

describe('a sign-in with an authenticator app', () => {
  it('reads the factors once per page, on the second step with the pending sign-in it finds (and the secret with it)', async () => {
    const { person, secret } = await personWithAuthenticatorApp();
    let result: Awaited<ReturnType<typeof signInAtService>> | undefined;
    let accountReads: string[] = [];
    const statements = await statementsDuring(onFactorTables, async () => {
      accountReads = await statementsDuring(onAccountsOrPendingSignIns, async () => {
        result = await signInAtService(new UserAgent(), server, registered, {
          email: person.email,
          password: person.password,
          totpSecret: secret,
        });
      });
    });
    expect(result?.callback?.searchParams.get('code')).toBeTruthy();
    expect(result?.pages).toEqual(['login', 'second-step', 'consent']);
    // The password's statement reads the factors with the account (whether there is a second step, and which);
    // the two pages after it read them with the pending sign-in and its account, in the
    // statement that finds the sign-in.
    const factorReads = statements.filter((text) => / FROM accounts a WHERE email_key = \$1$/.test(text));
    expect(factorReads).toHaveLength(1);
    const pendingReads = statements.filter((text) => text.includes('FROM pending_sign_ins p JOIN accounts a'));
    expect(pendingReads).toHaveLength(2);
    // The page that checks the code reads the app's secret in that same statement; beyond
    // those, only spending the code's step.
    expect(pendingReads[1]).toContain('secret_envelope');
    expect(pendingReads[0]).not.toContain('secret_envelope');
    expect(statements.filter((text) => text.startsWith('SELECT secret_envelope'))).toEqual([]);
    expect(statements).toHaveLength(1 + 2 + 1);
    // Between the password and the end of the second step, its two pages read the pending
    // sign-in with its account, one statement each, and nothing else of either table.
    const held = accountReads.findIndex((text) => text.startsWith('INSERT INTO pending_sign_ins'));
    const finished = accountReads.findIndex((text) => text.startsWith('DELETE FROM pending_sign_ins'));
    expect(accountReads.slice(held + 1, finished)).toEqual(pendingReads);
  });
});

describe('a second step answered', () => {
  it('records the step and the sign-in it completes in one statement, in that order', async () => {
    const { person, secret } = await personWithAuthenticatorApp();
    const writes = await statementsDuring(/^INSERT INTO audit_events/, async () => {
      const result = await signInAtService(new UserAgent(), server, registered, {
        email: person.email,
        password: person.password,
        totpSecret: secret,
      });
      expect(result.callback?.searchParams.get('code')).toBeTruthy();
    });
    // The second step's two events in one statement; the consent that follows in its own.
    expect(writes).toHaveLength(2);
    const { rows } = await server.db.query<{ event: string; details: { method?: string; amr?: string[] } }>(
      `SELECT event, details FROM audit_events WHERE account_id = $1 AND client_id = $2 ORDER BY id`,
      [person.id, registered.client.clientId],
    );
    expect(rows).toEqual([
      { event: 'sign_in.second_step', details: { method: 'totp' } },
      { event: 'sign_in', details: expect.objectContaining({ amr: ['pwd', 'otp', 'mfa'] }) },
      { event: 'consent', details: expect.anything() },
    ]);
  });
});

describe('an SSO hop', () => {
  it('within a minute of the last one, with the same grant, writes no service use', async () => {
    const person = await createTestAccount(server.db);
    const browser = new UserAgent();
    const usageWrites = /^\s*INSERT INTO service_usage/;
    const first = await statementsDuring(usageWrites, async () => {
      const signedIn = await signInAtService(browser, server, registered, { email: person.email, password: person.password });
      expect(signedIn.callback).toBeDefined();
    });
    const hop = await statementsDuring(usageWrites, async () => {
      const again = await signInAtService(browser, server, registered, {});
      expect(again.pages).toEqual([]);
      expect(again.callback?.searchParams.get('code')).toBeTruthy();
    });
    expect(first).toHaveLength(1);
    expect(hop).toHaveLength(0);
    const { rows } = await server.db.query('SELECT 1 FROM service_usage WHERE account_id = $1', [person.id]);
    expect(rows).toHaveLength(1);
  });
});

describe('a first-party sign-in', () => {
  const grantRows = (accountId: string, clientId: string) =>
    server.db.query<{ id: string; version: string; scope: string }>(
      `SELECT id, xmin::text AS version, payload->'openid'->>'scope' AS scope FROM oidc_payloads
        WHERE model = 'Grant' AND account_id = $1 AND client_id = $2`,
      [accountId, clientId],
    );

  it('writes the grant only when it gains something', async () => {
    const firstParty = await createTestClient(server.db, server.validator, {
      redirectUris: ['http://127.0.0.1:9482/cb'],
      firstParty: true,
    });
    const person = await createTestAccount(server.db);
    const signIn = async (scope: string) => {
      const result = await signInAtService(
        new UserAgent(),
        server,
        firstParty,
        { email: person.email, password: person.password },
        { scope },
      );
      expect(result.callback?.searchParams.get('code')).toBeTruthy();
      expect(result.pages).toEqual(['login']);
    };
    await signIn('openid profile');
    const { rows: first } = await grantRows(person.id, firstParty.client.clientId);
    expect(first).toHaveLength(1);
    expect(first[0]!.scope).toBe('openid profile');

    // Another browser, the same scopes: the grant found for the account already holds them.
    await signIn('openid profile');
    const { rows: again } = await grantRows(person.id, firstParty.client.clientId);
    expect(again).toEqual(first);

    // A scope it did not hold yet is added to the same grant.
    await signIn('openid profile email');
    const { rows: widened } = await grantRows(person.id, firstParty.client.clientId);
    expect(widened).toHaveLength(1);
    expect(widened[0]!.id).toBe(first[0]!.id);
    expect(widened[0]!.scope).toBe('openid profile email');
    expect(widened[0]!.version).not.toBe(first[0]!.version);
  });
});

describe('an authenticator-app code checked against the secret read with the pending sign-in', () => {
  it('is spent only under that secret: a factor replaced in between does not take it', async () => {
    const person = await createTestAccount(server.db);
    const keys = await keyRing(server.db, { keyEncryptionKeys: undefined });
    const enrol = async () => {
      const secret = await enrolmentSecret(server.db, person.id, keys);
      expect(await confirmEnrolment(server.db, person.id, secret, 0, keys)).toBe(true);
      const { rows } = await server.db.query<{ secret_envelope: unknown }>(
        'SELECT secret_envelope FROM totp_factors WHERE account_id = $1',
        [person.id],
      );
      return { secret, envelope: rows[0]!.secret_envelope };
    };
    const first = await enrol();
    await deleteTotpFactor(server.db, person.id);
    const second = await enrol();
    expect(await useTotpCode(server.db, person.id, totpCode(first.secret), keys, first.envelope)).toBe(false);
    expect(await useTotpCode(server.db, person.id, totpCode(second.secret), keys, second.envelope)).toBe(true);
    // Read here when the caller did not: the next step's code, under the current secret.
    expect(await useTotpCode(server.db, person.id, totpCode(second.secret, 1), keys)).toBe(true);
    expect(await useTotpCode(server.db, person.id, totpCode(second.secret, 1), keys, null)).toBe(false);
  });
});
