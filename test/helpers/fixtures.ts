import { randomBytes } from 'node:crypto';
import type { Database } from '../../src/db/index.js';
import { createAccount, type Account } from '../../src/accounts/store.js';
import { registerClient, type ClientRegistration, type MetadataValidator, type RegisteredClient } from '../../src/clients/store.js';

export function uniqueEmail(prefix = 'user'): string {
  return `${prefix}-${randomBytes(6).toString('hex')}@example.test`;
}

export async function createTestAccount(
  db: Database,
  overrides: Partial<Parameters<typeof createAccount>[1]> = {},
): Promise<Account & { password: string }> {
  const password = overrides.password ?? `pw-${randomBytes(8).toString('hex')}`;
  const account = await createAccount(db, {
    email: uniqueEmail(),
    name: 'Test Person',
    givenName: 'Test',
    familyName: 'Person',
    locale: 'en',
    emailVerified: true,
    ...overrides,
    password,
  });
  return { ...account, password };
}

export async function createTestClient(
  db: Database,
  validate: MetadataValidator,
  overrides: Partial<ClientRegistration> = {},
): Promise<RegisteredClient> {
  return registerClient(
    db,
    {
      name: `Service ${randomBytes(3).toString('hex')}`,
      redirectUris: ['http://127.0.0.1:9000/callback'],
      postLogoutRedirectUris: ['http://127.0.0.1:9000/signed-out'],
      scopes: ['openid', 'profile', 'email', 'offline_access'],
      grantTypes: ['authorization_code', 'refresh_token'],
      ...overrides,
    },
    validate,
  );
}
