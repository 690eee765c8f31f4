import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestAccount } from '../helpers/fixtures.js';
import { postForm, signInToAccountPages } from '../helpers/self-service.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { UserAgent } from '../helpers/user-agent.js';

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer({ env: { PRIVACY_POLICY_URL: 'https://example.test/privacy', PRIVACY_CONTACT: 'privacy@example.test' } });
});
afterAll(async () => {
  await server?.close();
});

const posts = [
  '/account/sign-in',
  '/account/sign-out',
  '/account/profile',
  '/account/email',
  '/account/email/resend',
  '/account/password',
  '/account/services/revoke',
  '/account/services/withdraw',
  '/account/data/export',
  '/account/delete',
  '/email/verify',
  '/email/change',
  '/password/forgot',
  '/password/reset',
];

describe('self-service pages under bad input', () => {
  it('never answer malformed requests with a 5xx, signed in or not', async () => {
    const account = await createTestAccount(server.db);
    const agent = new UserAgent();
    await signInToAccountPages(agent, server.issuer, account.email, account.password);
    const cookie = await agent.jar.getCookieString(`${server.issuer}/account`);
    const bodies: [string, string][] = [
      ['application/json', '{"email":1'],
      ['application/x-www-form-urlencoded', 'email[]=a&email[]=b&token[x]=1&_csrf[]=z'],
      ['application/x-www-form-urlencoded', `name=${'a'.repeat(20_000)}`],
      ['application/x-www-form-urlencoded', 'token=%00%00&email=a%00b%40example.test&name=x%00y&next=%2F%2Fevil&clientId=%00'],
      ['text/plain', 'hello'],
    ];
    for (const path of posts) {
      for (const [type, body] of bodies) {
        for (const withCookie of [false, true]) {
          const call = request(server.server).post(path).set('content-type', type).set('accept', 'text/html');
          const response = await (withCookie ? call.set('cookie', cookie) : call).send(body);
          expect(response.status, `${path} ${type} ${body.slice(0, 40)}`).toBeLessThan(500);
          expect(response.text).not.toMatch(/at \w+ \(.*:\d+:\d+\)/);
        }
      }
    }
    for (const path of [
      '/email/verify?token=%00',
      '/email/change?token[]=1',
      '/password/reset?token=' + 'x'.repeat(5000),
      '/lang/ja?next[]=1',
    ]) {
      expect((await request(server.server).get(path).set('accept', 'text/html')).status, path).toBeLessThan(500);
    }
  });

  it('keeps a NUL byte out of the profile with a message, not a server error', async () => {
    const account = await createTestAccount(server.db);
    const agent = new UserAgent();
    const page = await signInToAccountPages(agent, server.issuer, account.email, account.password);
    const response = await postForm(agent, server.issuer, page, '/account/profile', { name: 'a\u0000b' });
    expect(response.status).toBe(400);
    expect(response.body).toContain('class="error"');
  });

  it('answers a passkey id that is not one (a NUL byte) with a 400, not a server error', async () => {
    const account = await createTestAccount(server.db);
    const agent = new UserAgent();
    const page = await signInToAccountPages(agent, server.issuer, account.email, account.password);
    for (const action of ['/account/security/passkeys/rename', '/account/security/passkeys/remove']) {
      const response = await postForm(agent, server.issuer, page, action, { passkey: 'a\u0000b', name: 'Renamed', password: 'x' });
      expect(response.status, action).toBe(400);
    }
  });

  it('shows the configured privacy policy and contact in every footer', async () => {
    for (const path of ['/account/sign-in', '/password/forgot', '/no-such-page']) {
      const page = await new UserAgent().request(`${server.issuer}${path}`);
      expect(page.body, path).toContain('<a href="https://example.test/privacy">Privacy policy</a>');
      expect(page.body, path).toContain('Privacy questions: <a href="mailto:privacy@example.test">privacy@example.test</a>');
    }
  });
});
