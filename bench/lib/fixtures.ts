import { randomBytes } from 'node:crypto';
import { emailKey } from '../../src/accounts/email-key.js';
import { hashPassword } from '../../src/accounts/passwords.js';
import { registerClient, type ClientMetadata, type ClientRegistration } from '../../src/clients/store.js';
import type { Database } from '../../src/db/index.js';
import { insertPasskey } from '../../src/factors/passkeys.js';
import { confirmEnrolment, enrolmentSecret } from '../../src/factors/totp.js';
import { keyRing } from '../../src/oidc/keys.js';
import { SoftwareAuthenticator } from '../../test/helpers/software-authenticator.js';

export interface FixtureAccount {
  id: string;
  email: string;
  password: string;
  passwordHash: string;
  name: string;
  givenName: string;
  familyName: string;
}

export interface FixtureClient {
  id: string;
  /** undefined: a public client (no secret, refresh tokens rotate). */
  secret?: string;
  redirectUri: string;
}

/** The same accounts and clients, loaded into both servers. */
export interface Fixtures {
  accounts: FixtureAccount[];
  clients: ClientMetadata[];
  /** Third-party (consent), pairwise, authorization_code + refresh_token. */
  web: FixtureClient;
  /** First-party (no consent page): the password sign-in scenario. */
  firstParty: FixtureClient;
  /** Public (no secret, like a single-page app), third-party: its refresh tokens rotate. */
  app: FixtureClient;
  /** client_credentials only. */
  machine: FixtureClient;
}

/** Accounts with a second factor, for our server only (the reference has none). */
export interface StrongAccounts {
  /** With an authenticator app whose secret the bench knows; many, since each code is accepted once. */
  totp: (FixtureAccount & { secret: string })[];
  /** With one passkey each, on a software authenticator the bench drives (one per worker: counters only go up). */
  passkey: { account: FixtureAccount; authenticator: SoftwareAuthenticator }[];
}

export const benchPassword = 'bench-password-correct-horse';

async function insertAccounts(db: Database, accounts: FixtureAccount[], passwordHash: string): Promise<void> {
  await db.query(
    `INSERT INTO accounts (id, email, email_key, email_verified, password_hash, name, given_name, family_name, locale)
     SELECT a.id, a.email, a.email_key, true, $2, a.name, a.given_name, a.family_name, 'en'
     FROM jsonb_to_recordset($1::jsonb) AS a(id text, email text, email_key text, name text, given_name text, family_name text)`,
    [
      JSON.stringify(
        accounts.map((a) => ({
          id: a.id,
          email: a.email,
          email_key: emailKey(a.email),
          name: a.name,
          given_name: a.givenName,
          family_name: a.familyName,
        })),
      ),
      passwordHash,
    ],
  );
}

function newAccounts(count: number, prefix: string, passwordHash: string): FixtureAccount[] {
  return Array.from({ length: count }, (_, i) => ({
    id: randomBytes(16).toString('base64url'),
    email: `${prefix}-${i}@example.test`,
    password: benchPassword,
    passwordHash,
    name: `Bench Person ${i}`,
    givenName: 'Bench',
    familyName: `Person ${i}`,
  }));
}

/**
 * Accounts with factors set up as the Security page would (the secret encrypted under the
 * server's key-encryption key; the passkey's public key from a software authenticator).
 */
export async function createStrongAccounts(
  db: Database,
  options: { totp: number; passkey: number; origin: string },
): Promise<StrongAccounts> {
  const passwordHash = await hashPassword(benchPassword);
  const keys = await keyRing(db, { keyEncryptionKeys: undefined });
  const totpAccounts = newAccounts(options.totp, 'bench-totp', passwordHash);
  await insertAccounts(db, totpAccounts, passwordHash);
  const totp = [];
  for (const account of totpAccounts) {
    const secret = await enrolmentSecret(db, account.id, keys);
    // The setup's code spent a step long ago: every current step is free.
    await confirmEnrolment(db, account.id, secret, 0, keys);
    totp.push({ ...account, secret });
  }
  const passkeyAccounts = newAccounts(options.passkey, 'bench-passkey', passwordHash);
  await insertAccounts(db, passkeyAccounts, passwordHash);
  const passkey = [];
  for (const account of passkeyAccounts) {
    const handle = randomBytes(32).toString('base64url');
    await db.query('UPDATE accounts SET webauthn_user_id = $2 WHERE id = $1', [account.id, handle]);
    const authenticator = new SoftwareAuthenticator(options.origin);
    const registration = authenticator.register({
      challenge: randomBytes(32).toString('base64url'),
      rp: { id: new URL(options.origin).hostname, name: 'Group ID' },
      user: { id: handle, name: account.email, displayName: account.name },
    });
    const credential = authenticator.credentials[0]!;
    await insertPasskey(db, account.id, {
      credentialId: registration.id,
      publicKey: new Uint8Array(credential.publicKey),
      counter: 0,
      transports: ['internal'],
      deviceType: 'singleDevice',
      backedUp: false,
      aaguid: '00000000-0000-0000-0000-000000000000',
      name: 'Bench key',
    });
    passkey.push({ account, authenticator });
  }
  return { totp, passkey };
}

/** Registers the clients with our own registration code (so the metadata is exactly what the CLI stores) and inserts accounts. */
export async function createFixtures(db: Database, accountCount: number): Promise<Fixtures> {
  const passwordHash = await hashPassword(benchPassword);
  const accounts = newAccounts(accountCount, 'bench', passwordHash);
  await insertAccounts(db, accounts, passwordHash);

  const clients: ClientMetadata[] = [];
  async function register(input: ClientRegistration): Promise<FixtureClient> {
    let validated: ClientMetadata | undefined;
    const { client, clientSecret } = await registerClient(db, input, async (metadata) => {
      validated = metadata;
    });
    // The reference (stock oidc-provider) checks the secret as issued, whatever we store.
    clients.push(clientSecret ? { ...validated!, client_secret: clientSecret } : validated!);
    return { id: client.clientId, ...(clientSecret ? { secret: clientSecret } : {}), redirectUri: client.redirectUris[0] ?? '' };
  }
  const scopes: ClientRegistration['scopes'] = ['openid', 'profile', 'email', 'offline_access'];
  const web = await register({ name: 'Bench web', redirectUris: ['http://127.0.0.1:9999/cb'], scopes });
  const firstParty = await register({ name: 'Bench first party', redirectUris: ['http://127.0.0.1:9998/cb'], scopes, firstParty: true });
  const app = await register({ name: 'Bench app', redirectUris: ['http://127.0.0.1:9997/cb'], scopes, public: true });
  const machine = await register({ name: 'Bench machine', grantTypes: ['client_credentials'], scopes: ['openid'] });
  return { accounts, clients, web, firstParty, app, machine };
}
