import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RegisteredClient } from '../../src/clients/store.js';
import { waitFor } from '../helpers/listener.js';
import { createTestAccount, createTestClient, uniqueEmail } from '../helpers/fixtures.js';
import { outboxFor, postForm, signInToAccountPages } from '../helpers/self-service.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { openServiceLogin, randomIp } from '../helpers/service-sign-in.js';
import { hiddenField, UserAgent } from '../helpers/user-agent.js';

/*
 * Security review, finding 12: every kind of mail is limited, per recipient and requester,
 * with a higher cap per recipient; no stranger can use up what a person needs for their own
 * notices.
 */

let server: TestServer;
let registered: RegisteredClient;

beforeAll(async () => {
  server = await startTestServer({
    env: {
      TRUST_PROXY: 'true',
      MAIL_PER_RECIPIENT_PER_REQUESTER_PER_HOUR: '3',
      MAIL_PER_RECIPIENT_PER_HOUR: '5',
      MAIL_PER_ACCOUNT_PER_HOUR: '100',
    },
  });
  registered = await createTestClient(server.db, server.validator, { redirectUris: ['http://127.0.0.1:9480/cb'] });
});
afterAll(async () => {
  await server?.close();
});

async function registerWith(email: string, ip: string) {
  const { agent, registerUrl } = await openServiceLogin(server, registered, { forwardedFor: ip });
  const form = await agent.request(registerUrl, { headers: { 'x-forwarded-for': ip } });
  return agent.request(registerUrl, {
    form: { _csrf: hiddenField(form.body, '_csrf'), email, password: 'a long enough password', name: 'Stranger' },
    headers: { 'x-forwarded-for': ip },
  });
}

async function forgotPassword(email: string, ip: string) {
  const agent = new UserAgent();
  const form = await agent.request(`${server.issuer}/password/forgot`, { headers: { 'x-forwarded-for': ip } });
  return agent.request(`${server.issuer}/password/forgot`, {
    form: { _csrf: hiddenField(form.body, '_csrf'), email },
    headers: { 'x-forwarded-for': ip },
  });
}

describe('mail limits', () => {
  it("a stranger's registration attempts reach the owner at most MAIL_PER_RECIPIENT_PER_REQUESTER_PER_HOUR times", async () => {
    const owner = await createTestAccount(server.db);
    const ip = randomIp();
    for (let i = 0; i < 5; i += 1) expect((await registerWith(owner.email, ip)).status).toBe(400);
    expect(await outboxFor(server.db, owner.email, 'register_existing')).toHaveLength(3);
  });

  it('strangers together stop at the per-recipient cap, and the owner still gets the notices of their own changes', async () => {
    const owner = await createTestAccount(server.db);
    for (let i = 0; i < 4; i += 1) for (let j = 0; j < 2; j += 1) await registerWith(owner.email, `192.0.2.${i + 1}`);
    for (let i = 0; i < 4; i += 1) await forgotPassword(owner.email, randomIp());
    // Reset requests are looked up after the answer: wait until the last one was handled.
    await waitFor(async () => {
      const { rows } = await server.db.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM audit_events WHERE account_id = $1 AND event = 'password.reset_requested'`,
        [owner.id],
      );
      return rows[0]!.n === 4;
    });
    const fromStrangers = [
      ...(await outboxFor(server.db, owner.email, 'register_existing')),
      ...(await outboxFor(server.db, owner.email, 'reset_password')),
    ];
    expect(fromStrangers).toHaveLength(5);

    // The cap is used up, but not for what the person does on their own account.
    const agent = new UserAgent();
    const page = await signInToAccountPages(agent, server.issuer, owner.email, owner.password);
    const requested = await postForm(agent, server.issuer, page, '/account/email', {
      newEmail: uniqueEmail('mine'),
      password: owner.password,
    });
    expect(requested.status).toBe(303);
    expect(await outboxFor(server.db, owner.email, 'email_change_requested')).toHaveLength(1);
  });

  it('email-change links to one address from one account stop at the per-recipient-and-requester limit', async () => {
    const asker = await createTestAccount(server.db);
    const target = uniqueEmail('target');
    const agent = new UserAgent();
    const page = await signInToAccountPages(agent, server.issuer, asker.email, asker.password);
    for (let i = 0; i < 5; i += 1) {
      const answer = await postForm(agent, server.issuer, page, '/account/email', { newEmail: target, password: asker.password });
      expect(answer.status).toBe(303);
    }
    expect(await outboxFor(server.db, target, 'change_email')).toHaveLength(3);
  });
});
