import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { authenticate, findAccountById } from '../../src/accounts/store.js';
import { createTestAccount, uniqueEmail } from '../helpers/fixtures.js';
import { LogoutListener } from '../helpers/listener.js';
import {
  artefactCounts,
  connectService,
  latestMail,
  linkIn,
  outboxFor,
  postForm,
  signInToAccountPages,
  type ConnectedService,
} from '../helpers/self-service.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { hiddenField, UserAgent } from '../helpers/user-agent.js';

/*
 * Security review, item 17 (and finding 9): each account workflow is written once and both
 * doors, the pages and the CLI, run it. Each test here runs one workflow through each door,
 * for two people set up alike, and compares what happened: sessions, tokens, the services'
 * notices, the audit log and the mail. A copy that drifted shows up as a difference.
 */

let server: TestServer;
let listener: LogoutListener;
const run = promisify(execFile);
const bin = fileURLToPath(new URL('../../dist/cli/index.js', import.meta.url));

beforeAll(async () => {
  server = await startTestServer();
  listener = await new LogoutListener().start();
});
afterAll(async () => {
  await server?.close();
  await listener?.stop();
});

/** The CLI as an operator runs it beside the server: the same database and issuer. */
async function idp(args: string[], input = ''): Promise<void> {
  const child = run(process.execPath, [bin, ...args, '--json'], {
    env: { PATH: process.env['PATH'] ?? '', DATABASE_URL: inject('databaseUrl'), ISSUER: server.issuer, LOG_LEVEL: 'warn' },
    timeout: 20_000,
  });
  child.child.stdin?.end(input);
  await child;
}

interface Person {
  account: Awaited<ReturnType<typeof createTestAccount>>;
  /** Signed in to the account pages, with a session at a service that has a back-channel endpoint. */
  agent: UserAgent;
  otherDevice: UserAgent;
  service: ConnectedService;
  startedAt: Date;
}

let nextPort = 9700;
async function person(): Promise<Person> {
  const startedAt = new Date(Date.now() - 1000);
  const account = await createTestAccount(server.db);
  const agent = new UserAgent();
  const service = await connectService(server, agent, account, { port: (nextPort += 1), backchannelLogoutUri: listener.url });
  await signInToAccountPages(agent, server.issuer, account.email, account.password);
  const otherDevice = new UserAgent();
  await signInToAccountPages(otherDevice, server.issuer, account.email, account.password);
  return { account, agent, otherDevice, service, startedAt };
}

/** What a workflow did to a person, in terms both doors must agree on. */
async function effects(p: Person) {
  const [artefacts, deliveries, audit, account] = await Promise.all([
    artefactCounts(server.db, p.account.id),
    server.db.query<{ reason: string }>('SELECT reason FROM logout_deliveries WHERE client_id = $1 AND created_at >= $2 ORDER BY id', [
      p.service.registered.client.clientId,
      p.startedAt,
    ]),
    server.db.query<{ event: string; outcome: string }>(
      `SELECT event, outcome FROM audit_events WHERE account_id = $1 AND occurred_at >= $2 AND event <> 'sign_in' AND event <> 'consent' ORDER BY id`,
      [p.account.id, p.startedAt],
    ),
    findAccountById(server.db, p.account.id),
  ]);
  const mail = p.account.email ? (await outboxFor(server.db, p.account.email)).map((message) => message.purpose) : [];
  const refreshes = await oidc.refreshTokenGrant(p.service.config, p.service.tokens.refresh_token!).then(
    () => true,
    () => false,
  );
  return {
    accountExists: account !== undefined,
    sessions: artefacts['Session'] ?? 0,
    grants: artefacts['Grant'] ?? 0,
    otherAccountPageSignedIn: (await p.otherDevice.request(`${server.issuer}/account`)).status === 200,
    refreshTokenWorks: refreshes,
    serviceTold: deliveries.rows.map((row) => row.reason),
    audit: audit.rows.map((row) => `${row.event}:${row.outcome}`),
    mail,
  };
}

async function accountPage(p: Person, path: string) {
  return p.agent.request(`${server.issuer}${path}`);
}

describe('each workflow, through the pages and through the CLI', () => {
  it('setting a password: sessions and tokens end, the service is told, the person is mailed', async () => {
    const [viaPage, viaCli] = await Promise.all([person(), person()]);
    const form = await accountPage(viaPage, '/account/password');
    const done = await postForm(viaPage.agent, server.issuer, form, '/account/password', {
      currentPassword: viaPage.account.password,
      newPassword: 'a fresh passphrase one',
    });
    expect(done.status).toBe(303);
    await idp(['accounts', 'set-password', viaCli.account.email, '--password-stdin'], 'a fresh passphrase two');

    const [page, cli] = await Promise.all([effects(viaPage), effects(viaCli)]);
    expect(page).toEqual(cli);
    expect(page).toMatchObject({ sessions: 0, otherAccountPageSignedIn: false, refreshTokenWorks: false, serviceTold: ['session_ended'] });
    expect(page.audit).toEqual(['password.changed:success']);
    expect(page.mail).toContain('password_changed');
    expect(await authenticate(server.db, viaCli.account.email, 'a fresh passphrase two')).toBeDefined();
  });

  it('asking for a password reset: a link is mailed and the request audited', async () => {
    const [viaPage, viaCli] = await Promise.all([person(), person()]);
    const stranger = new UserAgent();
    const forgot = await stranger.request(`${server.issuer}/password/forgot`);
    const asked = await stranger.request(`${server.issuer}/password/forgot`, {
      form: { _csrf: hiddenField(forgot.body, '_csrf'), email: viaPage.account.email },
    });
    expect(asked.status).toBe(200);
    await latestMail(server.db, viaPage.account.email, 'reset_password');
    await idp(['accounts', 'reset-password', viaCli.account.email]);

    const [page, cli] = await Promise.all([effects(viaPage), effects(viaCli)]);
    expect(page).toEqual(cli);
    expect(page.audit).toEqual(['password.reset_requested:success']);
    expect(page.mail).toContain('reset_password');
    // Either link completes the reset through the same page.
    const link = linkIn((await latestMail(server.db, viaCli.account.email, 'reset_password')).body);
    const resetAgent = new UserAgent();
    const resetPage = await resetAgent.request(link);
    const reset = await resetAgent.request(`${server.issuer}/password/reset`, {
      form: { _csrf: hiddenField(resetPage.body, '_csrf'), token: hiddenField(resetPage.body, 'token'), password: 'after the reset link' },
    });
    expect(reset.status).toBe(200);
  });

  it('changing the email address: the current address is told with a way back, the new one gets the link', async () => {
    const [viaPage, viaCli] = await Promise.all([person(), person()]);
    const profile = await accountPage(viaPage, '/account');
    const pageTarget = uniqueEmail('new-page');
    await postForm(viaPage.agent, server.issuer, profile, '/account/email', { newEmail: pageTarget, password: viaPage.account.password });
    const cliTarget = uniqueEmail('new-cli');
    await idp(['accounts', 'change-email', viaCli.account.email, '--email', cliTarget]);

    const [page, cli] = await Promise.all([effects(viaPage), effects(viaCli)]);
    expect(page).toEqual(cli);
    expect(page.audit).toEqual(['email.change_requested:success']);
    expect(page.mail).toContain('email_change_requested');
    for (const target of [pageTarget, cliTarget]) expect(await outboxFor(server.db, target, 'change_email')).toHaveLength(1);
  });

  it('disconnecting a service: its grant and tokens go and it is told', async () => {
    const [viaPage, viaCli] = await Promise.all([person(), person()]);
    const services = await accountPage(viaPage, '/account/services');
    await postForm(viaPage.agent, server.issuer, services, '/account/services/revoke', {
      clientId: viaPage.service.registered.client.clientId,
    });
    await idp(['accounts', 'disconnect', viaCli.account.email, '--client', viaCli.service.registered.client.clientId]);

    const [page, cli] = await Promise.all([effects(viaPage), effects(viaCli)]);
    expect(page).toEqual(cli);
    expect(page).toMatchObject({ grants: 0, refreshTokenWorks: false, serviceTold: ['grant_revoked'], audit: ['grant.revoked:success'] });
  });

  it('signing out everywhere: sessions end and services are told; tokens stay with the services', async () => {
    const [viaPage, viaCli] = await Promise.all([person(), person()]);
    const activity = await accountPage(viaPage, '/account/activity');
    const done = await postForm(viaPage.agent, server.issuer, activity, '/account/activity/sign-out-everywhere');
    expect(done.status).toBe(303);
    await idp(['sessions', 'revoke-all', '--account', viaCli.account.email]);

    const [page, cli] = await Promise.all([effects(viaPage), effects(viaCli)]);
    // The page that asked stays signed in; the CLI has none of its own, so compare the other device.
    expect(page).toEqual(cli);
    expect(page).toMatchObject({ sessions: 0, otherAccountPageSignedIn: false, refreshTokenWorks: true, serviceTold: ['session_ended'] });
    expect(page.audit).toEqual(['sessions.ended:success']);
    expect((await accountPage(viaPage, '/account')).status).toBe(200);
  });

  it('deleting the account: everything goes, services are told, one record remains', async () => {
    const [viaPage, viaCli] = await Promise.all([person(), person()]);
    const form = await accountPage(viaPage, '/account/delete');
    await postForm(viaPage.agent, server.issuer, form, '/account/delete', { password: viaPage.account.password, confirm: 'yes' });
    await idp(['accounts', 'remove', viaCli.account.email]);

    const [page, cli] = await Promise.all([effects(viaPage), effects(viaCli)]);
    expect(page).toEqual(cli);
    expect(page).toMatchObject({
      accountExists: false,
      sessions: 0,
      grants: 0,
      refreshTokenWorks: false,
      serviceTold: ['account_deleted'],
      mail: [],
    });
    expect(page.audit).toEqual(['account.deleted:success']);
  });
});
