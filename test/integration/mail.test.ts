import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestAccount } from '../helpers/fixtures.js';
import { waitFor } from '../helpers/listener.js';
import { outboxFor } from '../helpers/self-service.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { decodeQuotedPrintable, FakeSmtpServer } from '../helpers/smtp.js';
import { hiddenField, UserAgent } from '../helpers/user-agent.js';

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
  });
});
