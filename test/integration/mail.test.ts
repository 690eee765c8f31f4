import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestAccount } from '../helpers/fixtures.js';
import { waitFor } from '../helpers/listener.js';
import { outboxFor } from '../helpers/self-service.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { decodeQuotedPrintable, FakeSmtpServer } from '../helpers/smtp.js';
import { hiddenField, UserAgent } from '../helpers/user-agent.js';
import { idp, json } from '../helpers/cli.js';

let server: TestServer;
let smtp: FakeSmtpServer;

beforeAll(async () => {
  smtp = await new FakeSmtpServer().start();
  server = await startTestServer({ env: { SMTP_URL: smtp.url, MAIL_FROM: 'Group ID <no-reply@id.example.test>' } });
});
afterAll(async () => {
  await server?.close();
  await smtp?.stop();
});

describe('mail over SMTP', () => {
  it('sends over SMTP_URL when it is set, and keeps nothing in the outbox', async () => {
    const account = await createTestAccount(server.db);
    const agent = new UserAgent();
    const form = await agent.request(`${server.issuer}/password/forgot`);
    const sent = await agent.request(`${server.issuer}/password/forgot`, {
      form: { _csrf: hiddenField(form.body, '_csrf'), email: account.email },
    });
    expect(sent.status).toBe(200);

    const mail = await waitFor(() => smtp.received.find((message) => message.to.some((to) => to.includes(account.email))));
    expect(mail.from).toContain('no-reply@id.example.test');
    expect(mail.data).toMatch(/^Subject: Choose a new password$/m);
    const text = decodeQuotedPrintable(mail.data);
    const link = /https?:\/\/\S+/.exec(text.slice(text.indexOf('\r\n\r\n')))![0];
    expect(link).toMatch(new RegExp(`^${server.issuer}/password/reset\\?token=[A-Za-z0-9_-]{43}$`));
    expect((await new UserAgent().request(link)).status).toBe(200);
    expect(await outboxFor(server.db, account.email)).toHaveLength(0);
    // Sent: what remains is the outcome, without the address or the body.
    expect(await deliveriesOf(account.id)).toEqual([
      expect.objectContaining({ status: 'sent', recipient: null, sealed_body: null, attempts: 1 }),
    ]);
  });

  it('keeps a message while the server refuses it for now, and sends it once when it accepts; the link is never stored in clear', async () => {
    const account = await createTestAccount(server.db);
    smtp.refuse = { temporarily: 2 };
    expect((await askForReset(account.email)).status).toBe(200);
    const pending = await waitFor(async () =>
      (await deliveriesOf(account.id)).find((row) => row.attempts >= 1 && row.status === 'pending'),
    );
    expect(pending).toMatchObject({ recipient: account.email, last_error: expect.stringContaining('451') });
    expect(JSON.stringify(pending.sealed_body)).not.toContain('token=');
    expect(JSON.stringify(pending.sealed_body)).not.toContain(server.issuer);

    const sent = await waitFor(async () => (await deliveriesOf(account.id)).find((row) => row.status === 'sent'), 15_000);
    expect(sent.attempts).toBe(3);
    expect(smtp.received.filter((message) => message.to.some((to) => to.includes(account.email)))).toHaveLength(1);
  });

  it('records a permanent refusal as failed at once, for admins to see', async () => {
    const account = await createTestAccount(server.db);
    smtp.refuse = 'permanently';
    try {
      await askForReset(account.email);
      const failed = await waitFor(async () => (await deliveriesOf(account.id)).find((row) => row.status === 'failed'));
      expect(failed).toMatchObject({ attempts: 1, recipient: null, sealed_body: null, last_error: expect.stringContaining('550') });
    } finally {
      smtp.refuse = undefined;
    }
    const listed = json<{ id: string; purpose: string; status: string; lastError: string }[]>(
      await idp(['mail', 'deliveries', '--status', 'failed', '--json']),
    );
    expect(listed).toContainEqual(
      expect.objectContaining({ purpose: 'reset_password', status: 'failed', lastError: expect.stringContaining('550') }),
    );
    expect(JSON.stringify(listed)).not.toContain(account.email);
  });

  it('sends each message once with two instances on one database', async () => {
    const second = await startTestServer({ env: { SMTP_URL: smtp.url, MAIL_FROM: 'Group ID <no-reply@id.example.test>' } });
    try {
      const accounts = await Promise.all(Array.from({ length: 8 }, () => createTestAccount(server.db)));
      await Promise.all(accounts.map((account, index) => askForReset(account.email, index % 2 ? second : server)));
      for (const account of accounts) {
        await waitFor(async () => (await deliveriesOf(account.id)).find((row) => row.status === 'sent'));
        expect(
          smtp.received.filter((message) => message.to.some((to) => to.includes(account.email))),
          account.email,
        ).toHaveLength(1);
      }
    } finally {
      await second.close();
    }
  });
});

async function askForReset(email: string, target: TestServer = server) {
  const agent = new UserAgent();
  const form = await agent.request(`${target.issuer}/password/forgot`);
  return agent.request(`${target.issuer}/password/forgot`, { form: { _csrf: hiddenField(form.body, '_csrf'), email } });
}

async function deliveriesOf(accountId: string) {
  const { rows } = await server.db.query<{
    status: string;
    attempts: number;
    recipient: string | null;
    sealed_body: unknown;
    last_error: string | null;
  }>('SELECT status, attempts, recipient, sealed_body, last_error FROM mail_deliveries WHERE account_id = $1 ORDER BY id', [accountId]);
  return rows;
}
