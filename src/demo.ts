import type { Database } from './db/index.js';
import { createAccount, findAccountByEmail } from './accounts/store.js';
import { listClients, registerClient, type MetadataValidator, type RegisteredClient } from './clients/store.js';

export const demoAccount = { email: 'demo@example.com', password: 'demo-password-123', name: 'Demo User' } as const;
const demoClientName = 'Demo service';

/** Creates a demo account and demo client for `npm run dev`, once. */
export async function seedDemo(
  db: Database,
  validate: MetadataValidator,
): Promise<{ client: RegisteredClient | undefined; createdAccount: boolean }> {
  let createdAccount = false;
  if (!(await findAccountByEmail(db, demoAccount.email))) {
    await createAccount(db, { ...demoAccount, emailVerified: true, givenName: 'Demo', familyName: 'User', locale: 'en' });
    createdAccount = true;
  }
  const existing = (await listClients(db)).find((client) => client.name === demoClientName);
  if (existing) return { client: undefined, createdAccount };
  const client = await registerClient(
    db,
    {
      name: demoClientName,
      redirectUris: ['http://localhost:8080/callback'],
      postLogoutRedirectUris: ['http://localhost:8080/'],
      scopes: ['openid', 'profile', 'email', 'offline_access'],
    },
    validate,
  );
  return { client, createdAccount };
}
