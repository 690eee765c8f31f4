import { randomBytes } from 'node:crypto';
import { hashPassword } from '../../src/accounts/passwords.js';
import { registerClient, type ClientMetadata, type ClientRegistration } from '../../src/clients/store.js';
import type { Database } from '../../src/db/index.js';

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
  secret: string;
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
  /** client_credentials only. */
  machine: FixtureClient;
}

export const benchPassword = 'bench-password-correct-horse';

/** Registers the clients with our own registration code (so the metadata is exactly what the CLI stores) and inserts accounts. */
export async function createFixtures(db: Database, accountCount: number): Promise<Fixtures> {
  const passwordHash = await hashPassword(benchPassword);
  const accounts: FixtureAccount[] = Array.from({ length: accountCount }, (_, i) => ({
    id: randomBytes(16).toString('base64url'),
    email: `bench-${i}@example.test`,
    password: benchPassword,
    passwordHash,
    name: `Bench Person ${i}`,
    givenName: 'Bench',
    familyName: `Person ${i}`,
  }));
  await db.query(
    `INSERT INTO accounts (id, email, email_verified, password_hash, name, given_name, family_name, locale)
     SELECT a.id, a.email, true, $2, a.name, a.given_name, a.family_name, 'en'
     FROM jsonb_to_recordset($1::jsonb) AS a(id text, email text, name text, given_name text, family_name text)`,
    [
      JSON.stringify(accounts.map((a) => ({ id: a.id, email: a.email, name: a.name, given_name: a.givenName, family_name: a.familyName }))),
      passwordHash,
    ],
  );

  const clients: ClientMetadata[] = [];
  async function register(input: ClientRegistration): Promise<FixtureClient> {
    let validated: ClientMetadata | undefined;
    const { client, clientSecret } = await registerClient(db, input, async (metadata) => {
      validated = metadata;
    });
    // The reference (stock oidc-provider) checks the secret as issued, whatever we store.
    clients.push({ ...validated!, client_secret: clientSecret! });
    return { id: client.clientId, secret: clientSecret!, redirectUri: client.redirectUris[0] ?? '' };
  }
  const scopes: ClientRegistration['scopes'] = ['openid', 'profile', 'email', 'offline_access'];
  const web = await register({ name: 'Bench web', redirectUris: ['http://127.0.0.1:9999/cb'], scopes });
  const firstParty = await register({ name: 'Bench first party', redirectUris: ['http://127.0.0.1:9998/cb'], scopes, firstParty: true });
  const machine = await register({ name: 'Bench machine', grantTypes: ['client_credentials'], scopes: ['openid'] });
  return { accounts, clients, web, firstParty, machine };
}
