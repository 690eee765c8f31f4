import { randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startAccountSession } from '../../src/accounts/account-sessions.js';
import { authenticate, createAccount } from '../../src/accounts/store.js';
import { insertPasskey } from '../../src/factors/passkeys.js';
import { replaceRecoveryCodes, useRecoveryCode } from '../../src/factors/recovery-codes.js';
import { confirmEnrolment, enrolmentSecret } from '../../src/factors/totp.js';
import { keyRing } from '../../src/oidc/keys.js';
import { createPostgresDatabase, type Database } from '../../src/db/index.js';
import { createLogger } from '../../src/logger.js';
import { uniqueEmail } from '../helpers/fixtures.js';
import { idp, json } from '../helpers/cli.js';
import { hashClientSecret } from '../../src/security/client-secrets.js';

/**
 * Runs the built bin (`npm run build` / `pretest` produce dist/) exactly as an operator
 * would, against the run's database, and checks exit codes, stdout, stderr and what was
 * (or was not) written. The database is shared with files running in parallel, so every
 * test uses its own names and emails and never counts a whole table.
 */

const migrationsDirectory = fileURLToPath(new URL('../../migrations/', import.meta.url));

/** Exactly one newline-terminated line. */
const oneLine = /^[^\n]+\n$/;

const tag = () => randomBytes(5).toString('hex');

type ClientJson = Record<string, unknown> & { clientId: string };
type AccountJson = Record<string, unknown> & { id: string; email: string };

let db: Database;

beforeAll(() => {
  db = createPostgresDatabase(inject('databaseUrl'), { poolMax: 3, logger: createLogger({ logLevel: 'silent' }) });
});
afterAll(async () => {
  await db?.close();
});

async function storedClient(clientId: string): Promise<Record<string, unknown> | undefined> {
  const { rows } = await db.query<{ metadata: Record<string, unknown> }>('SELECT metadata FROM clients WHERE id = $1', [clientId]);
  return rows[0]?.metadata;
}

/** Rows whose metadata mentions `marker` (a unique name or redirect URI used by one call only). */
async function clientRowsMentioning(marker: string): Promise<number> {
  const { rows } = await db.query<{ count: string }>('SELECT count(*) FROM clients WHERE metadata::text LIKE $1', [`%${marker}%`]);
  return Number(rows[0]!.count);
}

async function accountRowsMentioning(marker: string): Promise<number> {
  const { rows } = await db.query<{ count: string }>('SELECT count(*) FROM accounts WHERE lower(email) LIKE $1', [`%${marker}%`]);
  return Number(rows[0]!.count);
}

describe('idp clients', { timeout: 60_000 }, () => {
  it('adds a confidential client whose secret is printed once, then shows, lists, renames, rotates and removes it', async () => {
    const name = `demo-${tag()}`;
    const added = json<ClientJson>(await idp(['clients', 'add', '--name', name, '--redirect-uri', 'http://127.0.0.1:8080/cb', '--json']));
    const secret = added['clientSecret'];
    expect(added).toMatchObject({ name, public: false, authMethod: 'client_secret_basic', redirectUris: ['http://127.0.0.1:8080/cb'] });
    expect(added.clientId).toMatch(/^[\w-]{16}$/);
    expect(secret).toEqual(expect.stringMatching(/^[\w-]{43}$/));
    // The secret printed is the one the server will check, and the marker query can see the row.
    // Only a digest is stored (a database dump does not reveal the secret).
    expect((await storedClient(added.clientId))?.['client_secret']).toBe(hashClientSecret(String(secret)));
    expect(await clientRowsMentioning(name)).toBe(1);

    const { clientSecret: _printedOnce, ...view } = added;
    const [show, list] = await Promise.all([idp(['clients', 'show', added.clientId, '--json']), idp(['clients', 'list', '--json'])]);
    const shown = json<ClientJson>(show);
    expect(shown).toEqual(view);
    expect(view['eventStream']).toBeNull(); // no event stream yet
    expect(Object.keys(shown).filter((key) => /secret/i.test(key))).toEqual([]);
    expect(show.stdout).not.toContain(secret);
    const listed = json<ClientJson[]>(list);
    // The list leaves out the event stream (one query per service); show has it.
    const { eventStream: _stream, ...listView } = view;
    expect(listed.find((client) => client.clientId === added.clientId)).toEqual(listView);
    expect(listed.flatMap((client) => Object.keys(client)).filter((key) => /secret/i.test(key))).toEqual([]);
    expect(list.stdout).not.toContain(secret);

    const renamed = json<ClientJson>(await idp(['clients', 'update', added.clientId, '--name', `renamed-${name}`, '--json']));
    expect(renamed).toEqual({ ...view, name: `renamed-${name}`, updatedAt: expect.any(String) });
    expect(renamed['updatedAt']).not.toBe(view['updatedAt']);
    expect((await storedClient(added.clientId))?.['client_secret']).toBe(hashClientSecret(String(secret))); // an update keeps the secret

    const rotated = json<{ clientId: string; clientSecret: string }>(await idp(['clients', 'rotate-secret', added.clientId, '--json']));
    expect(rotated.clientId).toBe(added.clientId);
    expect(rotated.clientSecret).toMatch(/^[\w-]{43}$/);
    expect(rotated.clientSecret).not.toBe(secret);
    expect((await storedClient(added.clientId))?.['client_secret']).toBe(hashClientSecret(rotated.clientSecret));

    const removed = await idp(['clients', 'remove', added.clientId]);
    expect(removed).toEqual({ code: 0, stdout: `removed client ${added.clientId}\n`, stderr: '' });
    expect(await storedClient(added.clientId)).toBeUndefined();
    expect(await idp(['clients', 'show', added.clientId])).toEqual({
      code: 1,
      stdout: '',
      stderr: `idp: no client with id ${added.clientId}\n`,
    });
  });

  it('rejects an update with a non-loopback http redirect URI (exit 2) and leaves the stored client unchanged', async () => {
    const added = json<ClientJson>(
      await idp(['clients', 'add', '--name', `keep-${tag()}`, '--redirect-uri', 'https://keep.example.test/cb', '--json']),
    );
    const before = await storedClient(added.clientId);
    const result = await idp(['clients', 'update', added.clientId, '--redirect-uri', 'http://example.com/cb']);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(oneLine);
    expect(result.stderr).toMatch(/^idp: --redirect-uri "http:\/\/example.com\/cb": must use https/);
    expect(await storedClient(added.clientId)).toEqual(before);
    // Every URI flag of update is checked at the edge too, and a malformed one changes nothing.
    for (const flag of ['--redirect-uri', '--post-logout-redirect-uri', '--backchannel-logout-uri', '--frontchannel-logout-uri']) {
      const malformed = await idp(['clients', 'update', added.clientId, flag, 'not-a-uri', '--json']);
      expect(malformed.code, flag).toBe(2);
      expect(JSON.parse(malformed.stderr), flag).toEqual({ error: `${flag} "not-a-uri": must be an absolute URL`, exitCode: 2 });
    }
    expect(await storedClient(added.clientId)).toEqual(before);
  });

  it('gives a service ES256 ID tokens and minimal ID tokens when asked, and shows both', async () => {
    const added = json<ClientJson>(
      await idp([
        'clients',
        'add',
        '--name',
        `es-${tag()}`,
        '--redirect-uri',
        'https://es.example.test/cb',
        '--id-token-signed-response-alg',
        'ES256',
        '--json',
      ]),
    );
    expect(added).toMatchObject({ idTokenSignedResponseAlg: 'ES256', idTokenClaims: 'granted', requirePar: false, dpopBound: false });
    expect(await storedClient(added.clientId)).toMatchObject({ id_token_signed_response_alg: 'ES256', id_token_claims: 'granted' });
    const updated = json<ClientJson>(
      await idp([
        'clients',
        'update',
        added.clientId,
        '--id-token-claims',
        'minimal',
        '--id-token-signed-response-alg',
        'RS256',
        '--require-par',
        '--dpop-bound',
        '--json',
      ]),
    );
    expect(updated).toMatchObject({ idTokenSignedResponseAlg: 'RS256', idTokenClaims: 'minimal', requirePar: true, dpopBound: true });
    const shown = await idp(['clients', 'show', added.clientId]);
    expect(shown.stdout).toMatch(/id_token_signed_response_alg\s+RS256/);
    expect(shown.stdout).toMatch(/id_token_claims\s+minimal/);
    expect(shown.stdout).toMatch(/require_par\s+yes/);
  });

  it('requires an authentication level of a service with --require-acr, lifts it with none, and refuses unknown levels (exit 2)', async () => {
    const name = `Bank ${tag()}`;
    const added = json<ClientJson>(
      await idp([
        'clients',
        'add',
        '--name',
        name,
        '--redirect-uri',
        'https://bank.example/cb',
        '--require-acr',
        'urn:group-idp:acr:2fa',
        '--json',
      ]),
    );
    expect(added['requireAcr']).toBe('urn:group-idp:acr:2fa');
    expect((await storedClient(added.clientId))!['require_acr']).toBe('urn:group-idp:acr:2fa');
    expect((await idp(['clients', 'show', added.clientId])).stdout).toMatch(/require_acr\s+urn:group-idp:acr:2fa/);
    const raised = json<ClientJson>(await idp(['clients', 'update', added.clientId, '--require-acr', 'phr', '--json']));
    expect(raised['requireAcr']).toBe('phr');
    const lifted = json<ClientJson>(await idp(['clients', 'update', added.clientId, '--require-acr', 'none', '--json']));
    expect(lifted['requireAcr']).toBeNull();
    expect((await storedClient(added.clientId))!['require_acr']).toBeUndefined();
    const refused = await idp(['clients', 'update', added.clientId, '--require-acr', 'gold']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(oneLine);
    expect(refused.stderr).toContain('--require-acr');
  });

  it('adds a public first-party client without a secret, taking --scope space-separated or repeated', async () => {
    const [spaced, repeated] = await Promise.all([
      idp([
        'clients',
        'add',
        '--name',
        `pub-${tag()}`,
        '--public',
        '--first-party',
        '--redirect-uri',
        'http://localhost:8080/cb',
        '--scope',
        'openid profile',
        '--json',
      ]),
      idp([
        'clients',
        'add',
        '--name',
        `rep-${tag()}`,
        '--redirect-uri',
        'http://[::1]:8080/cb',
        '--scope',
        'openid',
        '--scope',
        'email,offline_access',
        '--json',
      ]),
    ]);
    const publicClient = json<ClientJson>(spaced);
    expect(publicClient).toMatchObject({
      public: true,
      authMethod: 'none',
      clientSecret: null,
      firstParty: true,
      scopes: ['openid', 'profile'],
    });
    const stored = await storedClient(publicClient.clientId);
    expect(stored).toMatchObject({ token_endpoint_auth_method: 'none', first_party: true, scope: 'openid profile' });
    expect(stored).not.toHaveProperty('client_secret');

    const repeatedClient = json<ClientJson>(repeated);
    expect(repeatedClient).toMatchObject({ public: false, firstParty: false, scopes: ['openid', 'email', 'offline_access'] });
    expect(repeatedClient['clientSecret']).toEqual(expect.any(String));
    expect((await storedClient(repeatedClient.clientId))?.['scope']).toBe('openid email offline_access');

    // A public client has no secret to rotate.
    const rotate = await idp(['clients', 'rotate-secret', publicClient.clientId]);
    expect(rotate).toEqual({ code: 2, stdout: '', stderr: 'idp: a public client has no secret\n' });
  });

  it('adds a client_credentials client without any redirect URI', async () => {
    const added = json<ClientJson>(await idp(['clients', 'add', '--name', `svc-${tag()}`, '--grant-type', 'client_credentials', '--json']));
    expect(added).toMatchObject({ grantTypes: ['client_credentials'], redirectUris: [], public: false, subjectType: 'public' });
    expect(added['clientSecret']).toEqual(expect.stringMatching(/^[\w-]{43}$/));
    expect(await storedClient(added.clientId)).toMatchObject({
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
    });
  });

  // Each case carries a unique marker (in --name or in the redirect URI) that any written row would contain.
  it.each([
    {
      what: 'an ftp redirect URI',
      args: (m: string) => ['clients', 'add', '--name', m, '--redirect-uri', 'ftp://x'],
      message: /^idp: --redirect-uri "ftp:\/\/x": must use https/,
    },
    {
      what: 'http on a non-loopback host',
      args: (m: string) => ['clients', 'add', '--name', m, '--redirect-uri', 'http://example.com/cb'],
      message: /--redirect-uri "http:\/\/example.com\/cb": must use https \(http is allowed only for localhost/,
    },
    // Every flag that takes a URI names itself and the value when the value is no URI at all.
    ...[
      ['--redirect-uri', 'not-a-uri'],
      ['--post-logout-redirect-uri', 'not a uri'],
      ['--backchannel-logout-uri', '//no-scheme'],
      ['--frontchannel-logout-uri', 'https//typo'],
    ].map(([flag, value]) => ({
      what: `a malformed ${flag}`,
      args: (m: string) => [
        'clients',
        'add',
        '--name',
        m,
        ...(flag === '--redirect-uri' ? [] : ['--redirect-uri', 'http://127.0.0.1/cb']),
        flag!,
        value!,
      ],
      message: new RegExp(`^idp: ${flag} ${JSON.stringify(value).replaceAll('/', '\\/')}: must be an absolute URL\n$`),
    })),
    {
      what: 'a second, malformed --redirect-uri',
      args: (m: string) => ['clients', 'add', '--name', m, '--redirect-uri', 'http://127.0.0.1/cb', '--redirect-uri', 'nope'],
      message: /^idp: --redirect-uri "nope": must be an absolute URL$/m,
    },
    {
      what: 'an unknown ID token algorithm',
      args: (m: string) => [
        'clients',
        'add',
        '--name',
        m,
        '--redirect-uri',
        'http://127.0.0.1/cb',
        '--id-token-signed-response-alg',
        'HS256',
      ],
      message: /^idp: --id-token-signed-response-alg "HS256": must be one of RS256, ES256/,
    },
    {
      what: 'an unknown ID token claims mode',
      args: (m: string) => ['clients', 'add', '--name', m, '--redirect-uri', 'http://127.0.0.1/cb', '--id-token-claims', 'all'],
      message: /^idp: --id-token-claims "all": must be one of granted, minimal/,
    },
    {
      what: 'an unknown flag',
      args: (m: string) => ['clients', 'add', '--name', m, '--redirect-uri', 'http://127.0.0.1/cb', '--bogus'],
      message: /Unknown option '--bogus'/,
    },
    {
      what: 'an unknown scope',
      args: (m: string) => ['clients', 'add', '--name', m, '--redirect-uri', 'http://127.0.0.1/cb', '--scope', 'phone'],
      message: /--scope "phone": must be one of/,
    },
    {
      what: 'an unknown subject type',
      args: (m: string) => ['clients', 'add', '--name', m, '--redirect-uri', 'http://127.0.0.1/cb', '--subject-type', 'weird'],
      message: /--subject-type "weird": must be pairwise or public/,
    },
    {
      what: 'a missing --name',
      args: (m: string) => ['clients', 'add', '--redirect-uri', `http://127.0.0.1:8080/${m}`],
      message: /--name "": a name is required/,
    },
    {
      what: 'an unknown command',
      args: (m: string) => ['clients', 'create', '--name', m],
      message: /unknown command 'clients create'; try one of: add, list/,
    },
    {
      what: 'an unknown command group',
      args: (m: string) => ['services', 'add', '--name', m],
      message: /unknown command 'services add --name .*'; run 'idp --help'/,
    },
  ])('exits 2 on $what, with one line on stderr, nothing on stdout and no client written', async ({ args, message }) => {
    const marker = `bad-${tag()}`;
    const result = await idp(args(marker));
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(oneLine);
    expect(result.stderr).toMatch(/^idp: /);
    expect(result.stderr).toMatch(message);
    expect(await clientRowsMentioning(marker)).toBe(0);
  });

  it('with --json prints errors as one JSON object {error, exitCode} on stderr, matching the exit code', async () => {
    const marker = `json-${tag()}`;
    const [invalid, unknownFlag, missing] = await Promise.all([
      idp(['clients', 'add', '--name', marker, '--redirect-uri', 'ftp://x', '--json']),
      idp(['clients', 'add', '--json', '--name', marker, '--bogus']),
      idp(['clients', 'show', marker, '--json']),
    ]);
    for (const [result, code] of [
      [invalid, 2],
      [unknownFlag, 2],
      [missing, 1],
    ] as const) {
      expect(result.code).toBe(code);
      expect(result.stdout).toBe('');
      expect(result.stderr).toMatch(oneLine);
      expect(JSON.parse(result.stderr)).toEqual({ error: expect.any(String), exitCode: code });
    }
    expect(JSON.parse(invalid.stderr).error).toMatch(/^--redirect-uri "ftp:\/\/x": must use https/);
    expect(JSON.parse(unknownFlag.stderr).error).toMatch(/^Unknown option '--bogus'/);
    expect(JSON.parse(missing.stderr).error).toBe(`no client with id ${marker}`);
    expect(await clientRowsMentioning(marker)).toBe(0);
  });
});

describe('idp clients: what a service may leave out, and its event stream', { timeout: 60_000 }, () => {
  const streamRow = async (clientId: string) =>
    (await db.query('SELECT endpoint_url, events_requested FROM event_streams WHERE client_id = $1', [clientId])).rows;

  it('registers optional scopes beside the required ones', async () => {
    const added = json<ClientJson>(
      await idp([
        'clients',
        'add',
        '--name',
        `opt-${tag()}`,
        '--redirect-uri',
        'https://shop.example/cb',
        '--scope',
        'openid',
        '--scope',
        'profile',
        '--optional-scope',
        'email',
        '--json',
      ]),
    );
    expect(added).toMatchObject({ scopes: ['openid', 'profile'], optionalScopes: ['email'] });
    // oidc-provider sees every scope the service may ask for; the consent page tells them apart.
    expect(await storedClient(added.clientId)).toMatchObject({ scope: 'openid profile email', optional_scopes: ['email'] });
    const refused = await idp(['clients', 'update', added.clientId, '--optional-scope', 'openid', '--json']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(oneLine);
  });

  it('subscribes a service to events by short names, shows them, and removes the stream with an empty endpoint', async () => {
    const added = json<ClientJson>(
      await idp(['clients', 'add', '--name', `ev-${tag()}`, '--redirect-uri', 'https://shop.example/cb', '--json']),
    );
    const args = [
      'clients',
      'update',
      added.clientId,
      '--events-endpoint',
      'https://shop.example/events',
      '--event',
      'account-purged',
      '--event',
      'credential-change',
    ];
    const updated = json<ClientJson>(await idp([...args, '--json']));
    expect(updated['eventStream']).toEqual({
      endpointUrl: 'https://shop.example/events',
      events: ['account-purged', 'credential-change'],
      status: 'enabled',
    });
    expect(json<ClientJson>(await idp(['clients', 'show', added.clientId, '--json']))['eventStream']).toEqual(updated['eventStream']);
    const text = await idp(['clients', 'show', added.clientId]);
    expect(text.stdout).toMatch(/events_endpoint\s+https:\/\/shop\.example\/events \(enabled\)/);
    expect(text.stdout).toMatch(/events\s+account-purged credential-change/);

    for (const bad of [
      ['--event', 'account-deleted'],
      ['--events-endpoint', 'http://shop.example/events'],
      ['--events-endpoint', 'https://10.0.0.8/events'],
    ]) {
      const refused = await idp(['clients', 'update', added.clientId, ...bad, '--json']);
      expect(refused.code, bad.join(' ')).toBe(2);
      expect(refused.stderr).toMatch(oneLine);
    }
    expect(await streamRow(added.clientId)).toEqual([
      {
        endpoint_url: 'https://shop.example/events',
        events_requested: [
          'https://schemas.openid.net/secevent/risc/event-type/account-purged',
          'https://schemas.openid.net/secevent/caep/event-type/credential-change',
        ],
      },
    ]);
    expect(json<ClientJson>(await idp(['clients', 'update', added.clientId, '--events-endpoint', '', '--json']))['eventStream']).toBeNull();
    expect(await streamRow(added.clientId)).toEqual([]);
  });

  it('lists event deliveries, and refuses a malformed filter', async () => {
    expect(Array.isArray(json(await idp(['events', 'deliveries', '--since', '1h', '--json'])))).toBe(true);
    const refused = await idp(['events', 'deliveries', '--status', 'lost', '--json']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(oneLine);
  });
});

describe('idp accounts', { timeout: 60_000 }, () => {
  it('adds an account with a generated password printed once, shows and lists it, and refuses the same email again (exit 1)', async () => {
    const email = uniqueEmail('cli');
    const added = json<AccountJson>(await idp(['accounts', 'add', '--email', email, '--name', 'X', '--json']));
    expect(added).toMatchObject({ email, name: 'X', emailVerified: false });
    const password = added['generatedPassword'];
    expect(password).toEqual(expect.stringMatching(/^[\w-]{24}$/));
    expect((await authenticate(db, email, password as string))?.id).toBe(added.id);

    const [show, list, duplicate] = await Promise.all([
      idp(['accounts', 'show', email, '--json']),
      idp(['accounts', 'list', '--limit', '1000', '--json']),
      idp(['accounts', 'add', '--email', email.toUpperCase(), '--name', 'Again', '--json']),
    ]);
    const { generatedPassword: _printedOnce, ...view } = added;
    // `show` adds the account's sign-in factors (none yet); `list` does not.
    expect(json(show)).toEqual({ ...view, factors: { passkeys: [], recoveryCodes: { unused: 0, total: 0, createdAt: null } } });
    expect(show.stdout).not.toContain(password);
    const listed = json<AccountJson[]>(list);
    expect(listed.find((account) => account.id === added.id)).toEqual(view);
    expect(list.stdout).not.toContain(password);
    expect(listed.flatMap((account) => Object.keys(account)).filter((key) => /password/i.test(key))).toEqual([]);

    expect(duplicate.code).toBe(1);
    expect(duplicate.stdout).toBe('');
    expect(duplicate.stderr).toMatch(oneLine);
    expect(JSON.parse(duplicate.stderr)).toEqual({ error: 'an account with that email already exists', exitCode: 1 });
    expect(await accountRowsMentioning(email.toLowerCase())).toBe(1);
    expect((await authenticate(db, email, password as string))?.name).toBe('X');
  });

  it('takes the password from stdin with --password-stdin, and set-password replaces it', async () => {
    const email = uniqueEmail('stdin');
    const first = `first ${tag()} password`;
    const added = json<AccountJson>(
      await idp(['accounts', 'add', '--email', email, '--password-stdin', '--json'], { input: `${first}\n` }),
    );
    expect(added).toMatchObject({ email, generatedPassword: null });
    expect((await authenticate(db, email, first))?.id).toBe(added.id); // the trailing newline is not part of it

    const second = `second ${tag()} password`;
    const changed = await idp(['accounts', 'set-password', email, '--password-stdin', '--json'], { input: second });
    expect(json(changed)).toEqual({ id: added.id, passwordChanged: true, generatedPassword: null });
    expect(changed.stdout).not.toContain(second);
    expect(await authenticate(db, email, second)).toBeDefined();
    expect(await authenticate(db, email, first)).toBeUndefined();

    // Too short: refused as bad input, and the current password still works.
    const short = await idp(['accounts', 'set-password', email, '--password-stdin'], { input: 'short\n' });
    expect(short).toEqual({ code: 2, stdout: '', stderr: 'idp: Use at least 8 characters for your password.\n' });
    expect(await authenticate(db, email, second)).toBeDefined();
  });

  it('exits 2 on an invalid email, with one line on stderr and no account written', async () => {
    const marker = `nomail-${tag()}`;
    const result = await idp(['accounts', 'add', '--email', marker, '--name', 'Nobody']);
    expect(result).toEqual({ code: 2, stdout: '', stderr: 'idp: email: Enter a valid email address.\n' });
    expect(await accountRowsMentioning(marker)).toBe(0);
  });

  it('removes an account by id, after which show exits 1', async () => {
    const email = uniqueEmail('remove');
    const added = json<AccountJson>(await idp(['accounts', 'add', '--email', email, '--json']));
    const removed = await idp(['accounts', 'remove', added.id, '--json']);
    expect(json(removed)).toEqual({ id: added.id, removed: true, notified: [], toldOfDeletion: [] });
    expect(await accountRowsMentioning(email)).toBe(0);
    const [byId, byEmail] = await Promise.all([idp(['accounts', 'show', added.id]), idp(['accounts', 'show', email])]);
    expect(byId).toEqual({ code: 1, stdout: '', stderr: 'idp: no such account\n' });
    expect(byEmail).toEqual({ code: 1, stdout: '', stderr: 'idp: no such account\n' });
  });
});

describe('idp accounts: sign-in factors', { timeout: 60_000 }, () => {
  /** An account with a passkey, an authenticator app, recovery codes and an account-page session, made as the pages would. */
  async function accountWithFactors() {
    const account = await createAccount(db, { email: uniqueEmail('cli-mfa'), password: `pw-${tag()}-long`, name: 'Mfa', locale: 'ja' });
    await insertPasskey(db, account.id, {
      credentialId: `cred-${tag()}`,
      publicKey: new Uint8Array([1, 2, 3]),
      counter: 7,
      transports: ['internal'],
      deviceType: 'multiDevice',
      backedUp: true,
      aaguid: '00000000-0000-0000-0000-000000000000',
      name: 'Phone passkey',
    });
    const keys = await keyRing(db, { keyEncryptionKeys: undefined });
    const secret = await enrolmentSecret(db, account.id, keys);
    await confirmEnrolment(db, account.id, secret, 1, keys);
    const codes = await replaceRecoveryCodes(db, account.id);
    await useRecoveryCode(db, account.id, codes[0]!.replace(/-/g, ''));
    await startAccountSession(db, account.id, 600, { browser: 'Chrome', os: 'Linux', ipPrefix: undefined });
    return { account, secret, codes };
  }

  it('accounts show lists factors by kind, name, count and date, never a secret', async () => {
    const { account, secret, codes } = await accountWithFactors();
    const shown = json<AccountJson & { factors: Record<string, unknown> }>(await idp(['accounts', 'show', account.email, '--json']));
    expect(shown.factors).toMatchObject({
      passkeys: [{ name: 'Phone passkey', deviceType: 'multiDevice', backedUp: true, lastUsedAt: null }],
      totp: { createdAt: expect.any(String), lastUsedAt: null },
      recoveryCodes: { unused: 9, total: 10 },
    });
    const text = await idp(['accounts', 'show', account.email]);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/passkeys\s+1/);
    expect(text.stdout).toMatch(/recovery_codes\s+9 of 10 unused/);
    expect(text.stdout).toMatch(/Phone passkey\s+synced/);
    for (const output of [JSON.stringify(shown), text.stdout]) {
      expect(output).not.toContain(secret);
      for (const code of codes) expect(output).not.toContain(code);
    }
  });

  it('accounts mfa reset removes every factor, ends every session, audits it and mails the person in their language', async () => {
    const { account } = await accountWithFactors();
    const reset = json<{ removed: Record<string, unknown> }>(await idp(['accounts', 'mfa', 'reset', account.email, '--json']));
    expect(reset.removed).toEqual({ passkeys: 1, authenticatorApp: true, recoveryCodes: 9 });
    const left = await db.query<{ n: string }>(
      `SELECT (SELECT count(*) FROM passkeys WHERE account_id = $1) + (SELECT count(*) FROM totp_factors WHERE account_id = $1)
        + (SELECT count(*) FROM recovery_codes WHERE account_id = $1) + (SELECT count(*) FROM account_sessions WHERE account_id = $1) AS n`,
      [account.id],
    );
    expect(left.rows[0]!.n).toBe('0');
    const audit = await db.query<{ actor: string; details: Record<string, unknown> }>(
      `SELECT actor, details FROM audit_events WHERE account_id = $1 AND event = 'factors.reset'`,
      [account.id],
    );
    expect(audit.rows).toEqual([{ actor: 'admin', details: { passkeys: 1, authenticatorApp: true, recoveryCodes: 9 } }]);
    const mail = await db.query<{ language: string }>(`SELECT language FROM outbox WHERE account_id = $1 AND purpose = 'factors_reset'`, [
      account.id,
    ]);
    expect(mail.rows).toEqual([{ language: 'ja' }]);
    // Nothing left to reset is not an error; an unknown account is (exit 1).
    expect(json<{ removed: Record<string, unknown> }>(await idp(['accounts', 'mfa', 'reset', account.id, '--json'])).removed).toEqual({
      passkeys: 0,
      authenticatorApp: false,
      recoveryCodes: 0,
    });
    const unknown = await idp(['accounts', 'mfa', 'reset', uniqueEmail('nobody')]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(oneLine);
  });
});

describe('idp db, keys and help', { timeout: 60_000 }, () => {
  it('db migrate --json applies nothing and reports every migration, 0001_init included, as already applied', async () => {
    const versions = (await readdir(migrationsDirectory))
      .filter((file) => /^\d{4}_[\w-]+\.sql$/.test(file))
      .sort()
      .map((file) => file.replace(/\.sql$/, ''));
    const result = json<{ applied: string[]; alreadyApplied: string[] }>(await idp(['db', 'migrate', '--json']));
    expect(result).toEqual({ applied: [], alreadyApplied: versions });
    expect(result.alreadyApplied).toContain('0001_init');
  });

  it('keys list --json lists the active RS256 and ES256 keys by id, algorithm and lifecycle only, as stored', async () => {
    // Keys are created when the provider is first built; `clients add` builds it, `keys list` only reads.
    json(await idp(['clients', 'add', '--name', `keys-${tag()}`, '--grant-type', 'client_credentials', '--json']));
    const keys = json<Record<string, unknown>[]>(await idp(['keys', 'list', '--json']));
    for (const key of keys)
      expect(Object.keys(key).sort()).toEqual(['activatesAt', 'alg', 'createdAt', 'kek', 'kid', 'retiredAt', 'retiresAt', 'status']);
    const active = keys.filter((key) => key['status'] === 'active');
    expect(active.map((key) => key['alg'])).toEqual(expect.arrayContaining(['RS256', 'ES256']));
    // Keys made together share created_at, so compare as sets.
    const { rows } = await db.query<{ kid: string; alg: string }>('SELECT kid, alg FROM signing_keys');
    const byKid = (list: { kid: unknown; alg: unknown }[]) => list.map(({ kid, alg }) => `${String(kid)} ${String(alg)}`).sort();
    expect(byKid(keys as { kid: unknown; alg: unknown }[])).toEqual(byKid(rows));
  });

  it("takes a value that begins with '-' (a session uid can) after '--', and says so when it was read as an option", async () => {
    const readAsOption = await idp(['sessions', 'revoke', '-nosuchsession', '--json']);
    expect(readAsOption.code).toBe(2);
    expect(JSON.parse(readAsOption.stderr).error).toMatch(/^Unknown option '-n' \(a <uid> that begins with '-' goes after '--'\)/);
    const afterDashes = await idp(['sessions', 'revoke', '--json', '--', '-nosuchsession']);
    expect(afterDashes.code).toBe(1);
    expect(JSON.parse(afterDashes.stderr).error).not.toMatch(/option/i);
  });

  it('--help exits 0 and lists every command; a command --help prints its usage without touching the database', async () => {
    const unreachable = { DATABASE_URL: 'postgres://postgres@127.0.0.1:1/none' };
    const [top, command] = await Promise.all([idp(['--help']), idp(['clients', 'add', '--help'], { env: unreachable })]);
    expect(top.code).toBe(0);
    expect(top.stderr).toBe('');
    for (const name of ['clients add', 'clients rotate-secret', 'accounts set-password', 'db migrate', 'keys list']) {
      expect(top.stdout).toContain(name);
    }
    expect(command).toMatchObject({ code: 0, stderr: '' });
    expect(command.stdout).toMatch(/^usage: idp clients add --name <name> --redirect-uri <uri>/);
  });

  it('exits 1 with one line when the database is unreachable, and 2 when DATABASE_URL is not a postgres URL', async () => {
    const [unreachable, misconfigured] = await Promise.all([
      idp(['clients', 'list'], { env: { DATABASE_URL: 'postgres://postgres@127.0.0.1:1/none' } }),
      idp(['clients', 'list'], { env: { DATABASE_URL: 'mysql://root@127.0.0.1/none' } }),
    ]);
    expect(unreachable).toEqual({ code: 1, stdout: '', stderr: 'idp: the database is not reachable\n' });
    expect(misconfigured).toEqual({
      code: 2,
      stdout: '',
      stderr: 'idp: invalid configuration: DATABASE_URL: expected a postgres:// URL\n',
    });
  });
});
