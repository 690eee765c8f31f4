import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findAccountByEmail } from '../../src/accounts/store.js';
import { idp, json } from '../helpers/cli.js';
import { createTestAccount, createTestClient, uniqueEmail } from '../helpers/fixtures.js';
import { legacyHashes } from '../helpers/legacy-hashes.js';
import { waitFor } from '../helpers/listener.js';
import { discoverClient, exchangeCode, startAuthorization } from '../helpers/oidc-client.js';
import { latestMail, linkIn } from '../helpers/self-service.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { completeAuthorization, hiddenField, UserAgent } from '../helpers/user-agent.js';

/*
 * Existing accounts join the common ID: imported with the hashes their service made, signed
 * in with the password people already have, merged by verified address, mapped to the sub
 * the service will see.
 */

let server: TestServer;
let directory: string;

beforeAll(async () => {
  server = await startTestServer();
  directory = await mkdtemp(join(tmpdir(), 'idp-import-'));
});
afterAll(async () => {
  await server?.close();
  await rm(directory, { recursive: true, force: true });
});

interface Report {
  rows: number;
  created: number;
  merged: number;
  unchanged: number;
  withoutPassword: number;
  notMerged: number;
  invalid: number;
  problems: { line: number; problem: string }[];
}

const admin = (args: string[]) => idp(args, { env: { ISSUER: server.issuer } });
const fileOf = async (name: string, lines: unknown[]) => {
  const path = join(directory, `${name}-${randomBytes(4).toString('hex')}.jsonl`);
  await writeFile(path, lines.map((line) => (typeof line === 'string' ? line : JSON.stringify(line))).join('\n'));
  return path;
};
const row = (fields: Record<string, unknown> = {}) => ({
  email: uniqueEmail('imported'),
  email_verified: true,
  name: 'Imported Person',
  legacy_id: `u-${randomBytes(6).toString('hex')}`,
  ...fields,
});

let port = 9650;
async function service() {
  const registered = await createTestClient(server.db, server.validator, { redirectUris: [`http://127.0.0.1:${(port += 1)}/cb`] });
  const config = await discoverClient(server.issuer, registered.client.clientId, registered.clientSecret);
  return { registered, config, clientId: registered.client.clientId, redirectUri: registered.client.redirectUris[0]! };
}

/** Signs in to the service through the hosted pages; the ID token's sub, or the page that refused. */
async function signIn(target: Awaited<ReturnType<typeof service>>, email: string, password: string) {
  const request = await startAuthorization(target.config, target.redirectUri, 'openid email');
  try {
    const { callback, pages } = await completeAuthorization(new UserAgent(), request.url.href, target.redirectUri, {
      email,
      password,
      consent: 'allow',
    });
    return { sub: (await exchangeCode(target.config, callback, request)).claims()!.sub, pages };
  } catch (error) {
    return { refused: (error as Error).message };
  }
}

async function storedHashes(email: string) {
  const { rows } = await server.db.query<{ password_hash: string | null; imported: string[] | null }>(
    `SELECT password_hash, (SELECT array_agg(hash) FROM imported_passwords p WHERE p.account_id = a.id) AS imported
     FROM accounts a WHERE email_key = lower($1)`,
    [email],
  );
  return rows[0];
}

describe('idp accounts import', { timeout: 120_000 }, () => {
  it('signs people in with the password their service hashed, in every notation, then keeps only argon2id; the mapping gives the sub the service sees', async () => {
    const target = await service();
    const password = 'the password I always had';
    const hashes = await legacyHashes(password);
    const rows = Object.entries(hashes).map(([notation, hash]) => ({ notation, ...row({ password_hash: hash }) }));
    const path = await fileOf(
      'notations',
      rows.map(({ notation: _notation, ...fields }) => fields),
    );
    const mappingPath = join(directory, `mapping-${randomBytes(4).toString('hex')}.jsonl`);
    const report = json<Report>(
      await admin(['accounts', 'import', path, '--client', target.clientId, '--mapping-out', mappingPath, '--json']),
    );
    expect(report).toMatchObject({ rows: rows.length, created: rows.length, merged: 0, invalid: 0, withoutPassword: 0 });
    const mapping = new Map(
      (await readFile(mappingPath, 'utf8'))
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as { legacy_id: string; sub: string })
        .map((entry) => [entry.legacy_id, entry.sub]),
    );
    expect(mapping.size).toBe(rows.length);

    // One person per notation, side by side (each check is its own sign-in through the pages).
    await Promise.all(
      rows.map(async ({ notation, email, legacy_id }) => {
        expect(await signIn(target, email, 'not the password'), notation).toHaveProperty('refused');
        const signedIn = await signIn(target, email, password);
        expect(signedIn, notation).toHaveProperty('sub');
        // Importing gave no consent: the person was asked, as at any first sign-in.
        expect((signedIn as { pages: string[] }).pages, notation).toEqual(['login', 'consent']);
        expect((signedIn as { sub: string }).sub, notation).toBe(mapping.get(legacy_id));
        const stored = await storedHashes(email);
        expect(stored?.password_hash, notation).toMatch(/^\$argon2id\$/);
        expect(stored?.imported, notation).toBeNull();
        expect(await signIn(target, email, password), `${notation}, again`).toHaveProperty('sub');
      }),
    );
  });

  it('imports fast or unsalted hashes without a password: the person sets one by the reset flow', async () => {
    const target = await service();
    const md5 = row({ password_hash: createHash('md5').update('hunter2!!').digest('hex') });
    const sha1 = row({ password_hash: createHash('sha1').update('hunter2!!').digest('hex') });
    const none = row({ password_hash: '' });
    const report = json<Report>(await admin(['accounts', 'import', await fileOf('weak', [md5, sha1, none]), '--json']));
    expect(report).toMatchObject({ created: 3, withoutPassword: 3, invalid: 0 });
    expect(await signIn(target, md5.email, 'hunter2!!')).toHaveProperty('refused');
    expect(await storedHashes(md5.email)).toEqual({ password_hash: null, imported: null });

    const agent = new UserAgent();
    const forgot = await agent.request(`${server.issuer}/password/forgot`);
    await agent.request(`${server.issuer}/password/forgot`, { form: { _csrf: hiddenField(forgot.body, '_csrf'), email: md5.email } });
    const link = linkIn((await waitFor(() => latestMail(server.db, md5.email, 'reset_password').catch(() => undefined))).body);
    const page = await agent.request(link);
    const done = await agent.request(`${server.issuer}/password/reset`, {
      form: { _csrf: hiddenField(page.body, '_csrf'), token: hiddenField(page.body, 'token'), password: 'a new passphrase after import' },
    });
    expect(done.status).toBe(200);
    expect(await signIn(target, md5.email, 'a new passphrase after import')).toHaveProperty('sub');
  });

  it('merges a row into the account of the same verified address; either password works until the first sign-in', async () => {
    const target = await service();
    const existing = await createTestAccount(server.db, { name: 'Set By Me', givenName: null, emailVerified: true });
    const imported = row({
      email: existing.email.toUpperCase(), // the same normalised key
      name: 'Imported Name',
      given_name: 'Imported',
      password_hash: (await legacyHashes('the shop password'))['bcrypt $2b$ cost 10'],
    });
    const report = json<Report>(
      await admin(['accounts', 'import', await fileOf('merge', [imported]), '--client', target.clientId, '--json']),
    );
    expect(report).toMatchObject({ created: 0, merged: 1 });
    expect(await findAccountByEmail(server.db, existing.email)).toMatchObject({
      id: existing.id,
      name: 'Set By Me',
      givenName: 'Imported',
    });
    expect(await signIn(target, existing.email, existing.password)).toHaveProperty('sub');
    // That sign-in was the first: only its password remains.
    expect(await signIn(target, existing.email, 'the shop password')).toHaveProperty('refused');

    // The other way round: the service's password signs in first, and then only it works.
    const other = await createTestAccount(server.db, { emailVerified: true });
    const shopRow = row({ email: other.email, password_hash: (await legacyHashes('the shop password'))['argon2i'] });
    expect(json<Report>(await admin(['accounts', 'import', await fileOf('merge-2', [shopRow]), '--json']))).toMatchObject({ merged: 1 });
    expect(await signIn(target, other.email, 'the shop password')).toHaveProperty('sub');
    expect(await signIn(target, other.email, other.password)).toHaveProperty('refused');
  });

  it('does not merge when either address is unverified, and says so', async () => {
    const unverified = await createTestAccount(server.db, { emailVerified: false });
    const verified = await createTestAccount(server.db, { emailVerified: true });
    const rows = [row({ email: unverified.email }), row({ email: verified.email, email_verified: false })];
    const report = json<Report>(await admin(['accounts', 'import', await fileOf('no-merge', rows), '--json']));
    expect(report).toMatchObject({ created: 0, merged: 0, notMerged: 2 });
    expect(report.problems.map((problem) => problem.line)).toEqual([1, 2]);
    expect(report.problems[0]!.problem).toContain('not merged');
    const { rows: mapped } = await server.db.query('SELECT 1 FROM account_imports WHERE account_id = ANY($1)', [
      [unverified.id, verified.id],
    ]);
    expect(mapped).toEqual([]);
  });

  it('re-running the same file changes nothing, and never brings back a password replaced since', async () => {
    const target = await service();
    const rows = [row({ password_hash: (await legacyHashes('first password'))['scrypt'] }), row()];
    const path = await fileOf('rerun', rows);
    const args = ['accounts', 'import', path, '--client', target.clientId, '--json'];
    expect(json<Report>(await admin(args))).toMatchObject({ created: 2, unchanged: 0 });
    expect(await signIn(target, rows[0]!.email, 'first password')).toHaveProperty('sub');
    const before = await storedHashes(rows[0]!.email);
    expect(json<Report>(await admin(args))).toMatchObject({ created: 0, merged: 0, unchanged: 2 });
    expect(await storedHashes(rows[0]!.email)).toEqual(before);
    const { rows: accounts } = await server.db.query('SELECT count(*)::int AS n FROM accounts WHERE email_key = ANY($1)', [
      rows.map((r) => r.email),
    ]);
    expect(accounts[0]).toEqual({ n: 2 });
  });

  it('reports each bad row by its line and imports the rest; --strict refuses the whole file; --dry-run writes nothing', async () => {
    const good = row();
    const lines = [
      good,
      '{"email": "broken json"',
      row({ emial: 'typo@example.test' }),
      row({ email: 'not an address' }),
      row({ password_hash: 'plaintext-password' }),
      row({ legacy_id: good.legacy_id }),
      '',
      row({ locale: 'not a locale!' }),
    ];
    const path = await fileOf('bad', lines);

    const strict = await admin(['accounts', 'import', path, '--strict', '--json']);
    expect(strict.code).toBe(2);
    expect(JSON.parse(strict.stderr)).toMatchObject({ error: expect.stringMatching(/^line 2: not valid JSON$/) });
    expect(await findAccountByEmail(server.db, good.email)).toBeUndefined();

    const dry = json<Report>(await admin(['accounts', 'import', path, '--dry-run', '--json']));
    expect(dry).toMatchObject({ created: 1, invalid: 6 });
    expect(await findAccountByEmail(server.db, good.email)).toBeUndefined();

    const report = json<Report>(await admin(['accounts', 'import', path, '--json']));
    expect(report).toMatchObject({ rows: 7, created: 1, invalid: 6 });
    expect(report.problems).toEqual([
      { line: 2, problem: 'not valid JSON' },
      { line: 3, problem: 'unknown field "emial"' },
      { line: 4, problem: expect.stringMatching(/^email: /) },
      { line: 5, problem: expect.stringMatching(/^password_hash: unknown password_hash notation/) },
      { line: 6, problem: 'the same legacy_id as line 1' },
      { line: 8, problem: expect.stringMatching(/^locale: /) },
    ]);
    expect(await findAccountByEmail(server.db, good.email)).toMatchObject({ name: 'Imported Person' });
    const text = await admin(['accounts', 'import', path]);
    expect(text.stdout).toContain('line 3: unknown field "emial"');
  });

  it('reads CSV with a header row', async () => {
    const target = await service();
    const hash = (await legacyHashes('csv password'))['pbkdf2_sha256 (Django)'];
    const email = uniqueEmail('csv');
    const path = join(directory, `accounts-${randomBytes(4).toString('hex')}.csv`);
    await writeFile(
      path,
      [
        'email,email_verified,name,given_name,family_name,locale,password_hash,legacy_id',
        `${email},true,"Doe, Jane",Jane,Doe,ja,${hash},42`,
        'x@example.test,true',
      ].join('\n'),
    );
    const report = json<Report>(await admin(['accounts', 'import', path, '--format', 'csv', '--client', target.clientId, '--json']));
    expect(report).toMatchObject({ created: 1, invalid: 1, problems: [{ line: 3 }] });
    expect(await findAccountByEmail(server.db, email)).toMatchObject({ name: 'Doe, Jane', locale: 'ja', emailVerified: true });
    expect(await signIn(target, email, 'csv password')).toHaveProperty('sub');
  });

  it('exports every account in the same format, with PHC hashes only when asked, and audits it', async () => {
    const person = await createTestAccount(server.db);
    const out = join(directory, `export-${randomBytes(4).toString('hex')}.jsonl`);
    expect(json(await admin(['accounts', 'export', '--with-password-hashes', '--out', out, '--json']))).toMatchObject({
      withPasswordHashes: true,
    });
    const exported = (await readFile(out, 'utf8'))
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(exported.find((record) => record['email'] === person.email)).toEqual({
      email: person.email,
      email_verified: true,
      name: person.name,
      given_name: person.givenName,
      family_name: person.familyName,
      locale: 'en',
      password_hash: expect.stringMatching(/^\$argon2id\$v=19\$m=19456,p=1,t=2\$/), // node-argon2's PHC string
      legacy_id: person.id,
    });
    const { rows } = await server.db.query<{ details: Record<string, unknown> }>(
      `SELECT details FROM audit_events WHERE event = 'accounts.exported' ORDER BY id DESC LIMIT 1`,
    );
    expect(rows[0]?.details).toMatchObject({ withPasswordHashes: true });

    const plain = await admin(['accounts', 'export']);
    expect(plain.code).toBe(0);
    const line = plain.stdout.split('\n').find((text) => text.includes(person.email))!;
    expect(JSON.parse(line)).not.toHaveProperty('password_hash');
  });
});
