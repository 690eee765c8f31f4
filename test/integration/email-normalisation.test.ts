import { randomBytes } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { emailKey } from '../../src/accounts/email-key.js';
import { createAccount, findAccountByEmail } from '../../src/accounts/store.js';
import { Conflict } from '../../src/errors.js';
import { createTestAccount, createTestClient } from '../helpers/fixtures.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { openServiceLogin } from '../helpers/service-sign-in.js';
import type { RegisteredClient } from '../../src/clients/store.js';

/*
 * Security review, finding 4: one lower-casing rule. JavaScript and Postgres `lower()`
 * disagree on some letters (Postgres folds `İ` to `i`, JavaScript to `i̇`), so a variant of an
 * address used to sign in to the ASCII account under a lockout counter of its own.
 */

let server: TestServer;
let registered: RegisteredClient;

beforeAll(async () => {
  server = await startTestServer({ env: { LOGIN_MAX_FAILURES_PER_ACCOUNT: '3' } });
  registered = await createTestClient(server.db, server.validator, { redirectUris: ['http://127.0.0.1:9450/cb'] });
});
afterAll(async () => {
  await server?.close();
});

async function signIn(email: string, password: string) {
  return (await openServiceLogin(server, registered)).submit(email, password);
}

describe('one key per address', () => {
  it('is NFC, then JavaScript lower-casing: İ, ı, ß and fullwidth letters stay distinct, composed and decomposed accents meet', () => {
    expect(emailKey('  Victoria@Example.COM ')).toBe('victoria@example.com');
    expect(emailKey('vİctoria@example.com')).not.toBe('victoria@example.com');
    expect(emailKey('vıctoria@example.com')).not.toBe('victoria@example.com');
    expect(emailKey('straße@example.com')).not.toBe('strasse@example.com');
    expect(emailKey('ＶＩＣＴＯＲＩＡ@example.com')).not.toBe('victoria@example.com');
    expect(emailKey('ＶＩＣＴＯＲＩＡ@example.com')).toBe(emailKey('ｖｉｃｔｏｒｉａ@example.com'));
    expect(emailKey('Jose\u0301@example.com')).toBe(emailKey('Jos\u00e9@example.com'));
  });

  it('a variant that Postgres lower() would fold into the account signs in to nothing', async () => {
    const tag = randomBytes(4).toString('hex');
    const account = await createTestAccount(server.db, { email: `victoria-${tag}@example.test` });
    for (const variant of [`vİctoria-${tag}@example.test`, `VİCTORIA-${tag}@example.test`, `vıctoria-${tag}@example.test`]) {
      expect(await findAccountByEmail(server.db, variant), variant).toBeUndefined();
      expect((await signIn(variant, account.password)).status, variant).toBe(401);
    }
    // The account itself, written in any case, is one address.
    expect((await signIn(`VICTORIA-${tag}@EXAMPLE.TEST`, account.password)).status).toBe(303);
  });

  it('every spelling of the account shares one lockout counter', async () => {
    const tag = randomBytes(4).toString('hex');
    const account = await createTestAccount(server.db, { email: `locked-${tag}@example.test` });
    for (const spelling of [`Locked-${tag}@example.test`, `LOCKED-${tag}@example.test`, `locked-${tag}@EXAMPLE.test`]) {
      expect((await signIn(spelling, 'wrong guess')).status).toBe(401);
    }
    expect((await signIn(account.email, account.password)).status).toBe(429);
    expect((await signIn(` ${account.email.toUpperCase()} `, account.password)).status).toBe(429);
  });

  it('is unique in the accounts table: the same address in another case is refused', async () => {
    const email = `unique-${randomBytes(4).toString('hex')}@example.test`;
    await createTestAccount(server.db, { email });
    await expect(createAccount(server.db, { email: email.toUpperCase(), password: 'a long enough password' })).rejects.toBeInstanceOf(
      Conflict,
    );
    const { rows } = await server.db.query<{ email_key: string }>('SELECT email_key FROM accounts WHERE email = $1', [email]);
    expect(rows).toEqual([{ email_key: email }]);
  });

  it('no code compares addresses with Postgres lower()', async () => {
    const offenders: string[] = [];
    const walk = async (directory: string): Promise<void> => {
      for (const entry of await readdir(directory, { withFileTypes: true })) {
        const path = join(directory, entry.name);
        if (entry.isDirectory()) await walk(path);
        else if (/lower\(\s*(\$\d|email|recipient)/i.test(await readFile(path, 'utf8'))) offenders.push(path);
      }
    };
    await walk(new URL('../../src', import.meta.url).pathname);
    expect(offenders).toEqual([]);
  });
});
