import type { ChildProcess } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestAccount, createTestClient } from '../helpers/fixtures.js';
import { waitFor } from '../helpers/listener.js';
import { discoverClient, exchangeCode, startAuthorization } from '../helpers/oidc-client.js';
import { cliScript, freePort, killAll, startInstance, waitUntilReady, type Instance } from '../helpers/processes.js';
import { createScratchDatabase, type ScratchDatabase } from '../helpers/scratch-database.js';
import { completeAuthorization, UserAgent } from '../helpers/user-agent.js';

/*
 * Standards issue, item 10: `idp keys rotate` is one command. Two running server processes
 * on one database pick up new, activated and retired keys (and cookie keys) on their own.
 */

const run = promisify(execFile);
const children: ChildProcess[] = [];
let scratch: ScratchDatabase;
let a: Instance;
let b: Instance;
let issuer: string;
let person: Awaited<ReturnType<typeof createTestAccount>>;
let client: { clientId: string; clientSecret: string; redirectUri: string };

beforeAll(async () => {
  scratch = await createScratchDatabase('idp_live_keys');
  const [portA, portB] = [await freePort(), await freePort()];
  issuer = `http://127.0.0.1:${portA}`;
  const settings = { issuer, databaseUrl: scratch.url, env: { KEY_REFRESH_SECONDS: '1' } };
  a = startInstance(children, 'A', { ...settings, port: portA });
  b = startInstance(children, 'B', { ...settings, port: portB });
  await Promise.all([waitUntilReady(a), waitUntilReady(b)]);
  person = await createTestAccount(scratch.db);
  const registered = await createTestClient(scratch.db, async () => {}, { redirectUris: ['http://127.0.0.1:9910/cb'] });
  client = {
    clientId: registered.client.clientId,
    clientSecret: registered.clientSecret!,
    redirectUri: registered.client.redirectUris[0]!,
  };
}, 60_000);

afterAll(async () => {
  killAll(children);
  await scratch?.drop();
});

async function idp(args: string[], env: Record<string, string> = {}) {
  const { stdout } = await run(process.execPath, [cliScript, ...args, '--json'], {
    env: { PATH: process.env['PATH'] ?? '', DATABASE_URL: scratch.url, ISSUER: issuer, LOG_LEVEL: 'warn', ...env },
    timeout: 20_000,
  });
  return JSON.parse(stdout) as { created: { kid: string; alg: string }[]; retiring: { kid: string }[] };
}

const publishedKids = async (instance: Instance) =>
  ((await (await fetch(`${instance.origin}/jwks`)).json()) as { keys: { kid: string }[] }).keys.map((key) => key.kid);

/** An ID token from a sign-in served entirely by `instance` (the issuer is the same for both). */
async function idTokenKid(instance: Instance): Promise<string> {
  const config = await discoverClient(issuer, client.clientId, client.clientSecret);
  const request = await startAuthorization(config, client.redirectUri, 'openid');
  const atInstance = new URL(request.url);
  atInstance.host = new URL(instance.origin).host;
  const { callback } = await completeAuthorization(new UserAgent(), atInstance.href, client.redirectUri, { ...person, consent: 'allow' });
  const tokens = await exchangeCode(config, callback, request);
  return (JSON.parse(Buffer.from(tokens.id_token!.split('.')[0]!, 'base64url').toString()) as { kid: string }).kid;
}

describe('keys rotated while two instances run', () => {
  it('are published by both at once, sign on both from their activation time, and leave both JWKS when withdrawn; no restart', async () => {
    const before = await publishedKids(a);
    expect(await publishedKids(b)).toEqual(before);
    const signingBefore = await idTokenKid(a);

    const rotation = await idp(['keys', 'rotate'], { KEY_ACTIVATION_DELAY_SECONDS: '4' });
    const newRs = rotation.created.find((key) => key.alg === 'RS256')!.kid;
    for (const instance of [a, b]) await waitFor(async () => (await publishedKids(instance)).includes(newRs), 10_000);
    // Published, not yet signing: services' JWKS caches learn the key first.
    expect(await idTokenKid(b)).toBe(signingBefore);
    for (const instance of [a, b]) await waitFor(async () => (await idTokenKid(instance)) === newRs, 15_000);

    // A compromise withdraws the old keys everywhere at once.
    const emergency = await idp(['keys', 'rotate', '--compromised']);
    const newest = emergency.created.map((key) => key.kid);
    for (const instance of [a, b]) {
      await waitFor(async () => {
        const kids = await publishedKids(instance);
        return kids.length === 2 && newest.every((kid) => kids.includes(kid));
      }, 10_000);
    }
    expect(await publishedKids(a)).not.toContain(newRs);
  });

  it('cookie keys rotated are taken up by both: new cookies are signed with the new key and old ones still work', async () => {
    const browser = new UserAgent();
    await browser.request(`${a.origin}/account/sign-in`);
    const before = await browser.jar.getCookieString(`${a.origin}/account`);
    await run(process.execPath, [cliScript, 'keys', 'rotate-cookie-keys', '--activate-immediately'], {
      env: { PATH: process.env['PATH'] ?? '', DATABASE_URL: scratch.url, LOG_LEVEL: 'warn' },
      timeout: 20_000,
    });
    const { rows } = await scratch.db.query<{ value: string }>(`SELECT value FROM server_secrets WHERE name = 'cookie_keys'`);
    const newest = (JSON.parse(rows[0]!.value) as { key: string; activatesAt: string }[]).sort(
      (x, y) => Date.parse(y.activatesAt) - Date.parse(x.activatesAt),
    )[0]!.key;
    // Keygrip's signature of a cookie: HMAC-SHA1 of "name=value", base64url.
    const signedWithNewest = (cookies: string[], name: string) => {
      const value = cookies
        .find((cookie) => cookie.startsWith(`${name}=`))
        ?.split(';')[0]!
        .slice(name.length + 1);
      const sig = cookies
        .find((cookie) => cookie.startsWith(`${name}.sig=`))
        ?.split(';')[0]!
        .slice(name.length + 5);
      return value !== undefined && sig === createHmac('sha1', newest).update(`${name}=${value}`).digest('base64url');
    };
    for (const instance of [a, b]) {
      await waitFor(async () => {
        const response = await fetch(`${instance.origin}/account/sign-in`);
        return signedWithNewest(response.headers.getSetCookie(), 'idp.csrf');
      }, 10_000);
    }
    // The browser's cookies from before the rotation are still accepted (its CSRF secret is kept).
    const page = await browser.request(`${b.origin}/account/sign-in`);
    expect(page.status).toBe(200);
    expect(page.headers.getSetCookie().some((cookie) => cookie.startsWith('idp.csrf='))).toBe(false);
    expect(before).toContain('idp.csrf=');
  });
});
