import type { FixtureAccount, FixtureClient } from './fixtures.js';
import { authorize, CookieJar, exchangeCode } from './flows.js';
import { Http } from './http.js';

/** A browser with a session and consent at a client, and the tokens it got there. */
export interface User {
  jar: CookieJar;
  accessToken: string;
  refreshToken: string;
}

/** Signs in `count` browsers (login, consent, code exchange), four at a time. */
export async function prepareUsers(
  origin: string,
  client: FixtureClient,
  accounts: FixtureAccount[],
  count: number,
  scope: string,
): Promise<User[]> {
  const http = new Http(origin, 4);
  const users: User[] = new Array(count);
  let next = 0;
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      while (next < count) {
        const i = next++;
        const jar = new CookieJar();
        const tokens = await exchangeCode(http, client, await authorize(http, jar, client, accounts[i]!, scope));
        users[i] = { jar, accessToken: tokens.accessToken, refreshToken: tokens.refreshToken! };
      }
    }),
  );
  await http.close();
  return users;
}
