import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { acrLevels } from '../../src/factors/levels.js';
import { translator } from '../../src/i18n/catalogue.js';
import { createTestAccount, createTestClient } from '../helpers/fixtures.js';
import { latestMail, outboxFor, signInToAccountPages } from '../helpers/self-service.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { dumpEveryTable } from '../helpers/service-sign-in.js';
import {
  ageAuthenticatorApp,
  idTokenClaimsOf,
  recoveryCodesIn,
  setUpAuthenticatorApp,
  signInAtService,
  submit,
  totpCode,
  totpCodeOfStep,
  totpSecretIn,
  unescapeHtml,
} from '../helpers/strong-sign-in.js';
import { formActions, UserAgent, type PageResponse } from '../helpers/user-agent.js';

const t = translator('en');
let server: TestServer;

beforeAll(async () => {
  server = await startTestServer({ hostName: 'localhost' });
});
afterAll(() => server?.close());

/** A person with an authenticator app (set up on the Security page) and their recovery codes. */
async function personWithAuthenticator() {
  const account = await createTestAccount(server.db);
  const agent = new UserAgent();
  await signInToAccountPages(agent, server.issuer, account.email, account.password);
  const { secret, after } = await setUpAuthenticatorApp(agent, server);
  await ageAuthenticatorApp(server, account.id);
  return { account, agent, secret, setupPage: after, recoveryCodes: recoveryCodesIn(after.body) };
}

/** A fresh browser at the second step of a service sign-in, after the right password. */
async function atSecondStep(account: { email: string; password: string }, registered: Awaited<ReturnType<typeof createTestClient>>) {
  const agent = new UserAgent();
  const result = await signInAtService(agent, server, registered, { email: account.email, password: account.password });
  const page = result.page!;
  expect(result.pages).toEqual(['login']);
  const action = formActions(page.body)
    .map(unescapeHtml)
    .find((candidate) => candidate.endsWith('/second-step'))!;
  return { agent, page, answer: (fields: Record<string, string>) => submit(agent, server, page, action, fields) };
}

const callbackOf = (response: PageResponse) => response.location;

describe('an authenticator app', () => {
  it('is set up from the Security page with #totp-secret and a current code; ten recovery codes are shown once; secrets stay encrypted', async () => {
    const account = await createTestAccount(server.db);
    const agent = new UserAgent();
    await signInToAccountPages(agent, server.issuer, account.email, account.password);
    const setup = await agent.request(`${server.issuer}/account/security/authenticator`);
    expect(setup.body).toMatch(/<div class="qr" role="img" aria-label="[^"]+"><svg/);
    const secret = totpSecretIn(setup.body);
    expect(secret).toMatch(/^[A-Z2-7]{32}$/);

    const wrong = await submit(agent, server, setup, '/account/security/authenticator', {
      code: '000000' === totpCode(secret) ? '111111' : '000000',
    });
    expect(wrong.status).toBe(400);
    expect(wrong.body).toContain(t('authenticator.error.incorrect'));
    const malformed = await submit(agent, server, setup, '/account/security/authenticator', { code: '12ab56' });
    expect(malformed.status).toBe(400);
    expect(malformed.body).toContain(t('secondStep.error.codeFormat'));
    // The setup keeps its secret until confirmed: the page shows the same one again.
    expect(totpSecretIn(wrong.body)).toBe(secret);

    const done = await submit(agent, server, setup, '/account/security/authenticator', { code: totpCode(secret) });
    expect(done.status).toBe(200);
    const codes = recoveryCodesIn(done.body);
    expect(codes).toHaveLength(10);
    expect(new Set(codes).size).toBe(10);
    for (const code of codes) expect(code).toMatch(/^[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}$/);
    expect((await latestMail(server.db, account.email, 'factor_added')).body).toContain('authenticator app');
    expect((await agent.request(`${server.issuer}/account/security`)).body).toContain(t('security.authenticator.on'));
    expect((await agent.request(`${server.issuer}/account/security`)).body).toContain(
      t('security.recovery.count', { unused: 10, total: 10 }),
    );

    const dump = await dumpEveryTable(server.db);
    expect(dump).not.toContain(secret);
    for (const code of codes) {
      expect(dump).not.toContain(code);
      expect(dump).not.toContain(code.replace(/-/g, ''));
    }
  });

  it('is asked for only after a right password: a wrong one gets the page an unknown address gets', async () => {
    const { account } = await personWithAuthenticator();
    const registered = await createTestClient(server.db, server.validator);
    const wrong = await signInAtService(new UserAgent(), server, registered, { email: account.email, password: 'not the password' });
    expect(wrong.page!.status).toBe(401);
    expect(wrong.page!.body).not.toContain('name="code"');
    const unknown = await signInAtService(new UserAgent(), server, registered, {
      email: 'nobody@example.test',
      password: 'not the password',
    });
    const comparable = (body: string) =>
      body.replace(/(value|data-options)="[^"]*"/g, '').replace(/interaction(\/|%2F)[\w-]+/g, 'interaction/UID');
    expect(comparable(unknown.page!.body)).toBe(comparable(wrong.page!.body));
  });

  it('signs in with a code; a code is accepted once, one step of drift either way, not two', async () => {
    const { account, secret } = await personWithAuthenticator();
    const registered = await createTestClient(server.db, server.validator);
    const result = await signInAtService(new UserAgent(), server, registered, {
      email: account.email,
      password: account.password,
      totpSecret: secret,
    });
    expect(result.pages).toEqual(['login', 'second-step', 'consent']);
    const claims = await idTokenClaimsOf(server, registered, result.callback!);
    expect(claims.amr).toEqual(['pwd', 'otp', 'mfa']);
    expect(claims.acr).toBe(acrLevels.twoFactors);

    // The code just used is refused in the next sign-in: a replay. It is the code of the step
    // recorded as used, so a 30-second boundary passing meanwhile cannot make it a fresh code.
    const { rows } = await server.db.query<{ last_used_step: string }>('SELECT last_used_step FROM totp_factors WHERE account_id = $1', [
      account.id,
    ]);
    const replay = await atSecondStep(account, registered);
    const replayed = await replay.answer({ code: totpCodeOfStep(secret, Number(rows[0]!.last_used_step)) });
    expect(replayed.status).toBe(401);
    expect(replayed.body).toContain(t('secondStep.error.code'));
    // Two steps ahead is beyond the drift allowed; one step ahead (a fast clock) is not.
    expect((await replay.answer({ code: totpCode(secret, 2) })).status).toBe(401);
    expect((await replay.answer({ code: totpCode(secret, 1) })).status).toBe(303);
    // Once a later step was used, an earlier code is refused too.
    const behind = await atSecondStep(account, registered);
    expect((await behind.answer({ code: totpCode(secret) })).status).toBe(401);
  });

  it('accepts a code one step behind (a slow clock), not two', async () => {
    const { account, secret } = await personWithAuthenticator();
    const registered = await createTestClient(server.db, server.validator);
    const late = await atSecondStep(account, registered);
    expect((await late.answer({ code: totpCode(secret, -2) })).status).toBe(401);
    expect((await late.answer({ code: totpCode(secret, -1) })).status).toBe(303);
  });

  it('accepts one of two concurrent submissions of the same code', async () => {
    const { account, secret } = await personWithAuthenticator();
    const registered = await createTestClient(server.db, server.validator);
    const [first, second] = await Promise.all([atSecondStep(account, registered), atSecondStep(account, registered)]);
    const code = totpCode(secret, 1);
    const answers = await Promise.all([first.answer({ code }), second.answer({ code })]);
    expect(answers.map((answer) => answer.status).sort()).toEqual([303, 401]);
  });

  it('refuses codes of the wrong length or alphabet with a clear message', async () => {
    const { account } = await personWithAuthenticator();
    const registered = await createTestClient(server.db, server.validator);
    const { answer } = await atSecondStep(account, registered);
    for (const code of ['12345', '1234567', 'abcdef', '١٢٣٤٥٦', '']) {
      const response = await answer({ code });
      expect(response.status, code).toBe(400);
      expect(response.body).toContain(t('secondStep.error.codeFormat'));
    }
    for (const recovery_code of ['ABCD-EFGH', 'ABCD-EFGH-JKMN-P', 'ABCD-EFGH-JKM!']) {
      const response = await answer({ recovery_code });
      expect(response.status, recovery_code).toBe(400);
      expect(response.body).toContain(t('secondStep.error.recoveryFormat'));
    }
  });

  it('locks the second step after the limit of wrong answers, even for the right code after a fresh right password', async () => {
    const { account, secret } = await personWithAuthenticator();
    const registered = await createTestClient(server.db, server.validator);
    const { answer } = await atSecondStep(account, registered);
    for (let attempt = 0; attempt < server.config.rateLimits.secondStepFailuresPerAccount; attempt += 1) {
      expect((await answer({ code: totpCode(secret, 5) })).status).toBe(401);
    }
    const locked = await answer({ code: totpCode(secret) });
    expect(locked.status).toBe(429);
    expect(locked.headers.get('retry-after')).toMatch(/^\d+$/);
    const again = await atSecondStep(account, registered);
    expect((await again.answer({ code: totpCode(secret) })).status).toBe(429);
  });
});

describe('the account pages', () => {
  it('ask for the second step too: no account-page session until it is given', async () => {
    const { account, secret } = await personWithAuthenticator();
    const agent = new UserAgent();
    const form = await agent.request(`${server.issuer}/account/sign-in?next=/account/security`);
    const afterPassword = await submit(agent, server, form, '/account/sign-in', {
      email: account.email,
      password: account.password,
      next: '/account/security',
    });
    expect(afterPassword.status).toBe(303);
    expect(afterPassword.location).toBe(`${server.issuer}/account/sign-in/second-step?next=%2Faccount%2Fsecurity`);
    expect((await agent.request(`${server.issuer}/account`)).status).toBe(303);
    const step = await agent.request(afterPassword.location!);
    expect(step.body).toContain('name="code"');
    const done = await submit(agent, server, step, '/account/sign-in/second-step?next=%2Faccount%2Fsecurity', { code: totpCode(secret) });
    expect(done.status).toBe(303);
    expect(done.location).toBe(`${server.issuer}/account/security`);
    expect((await agent.request(`${server.issuer}/account/security`)).status).toBe(200);
    // The sign-in in progress is gone: the same step cannot finish a second time.
    expect((await submit(agent, server, step, '/account/sign-in/second-step', { code: totpCode(secret, 1) })).status).toBe(400);
  });
});

describe('recovery codes', () => {
  it('work once each, forgive case and hyphens, and each use is mailed with the count left', async () => {
    const { account, recoveryCodes } = await personWithAuthenticator();
    const registered = await createTestClient(server.db, server.validator);
    const first = await signInAtService(new UserAgent(), server, registered, {
      email: account.email,
      password: account.password,
      recoveryCode: recoveryCodes[0]!,
    });
    expect(first.pages).toEqual(['login', 'second-step', 'consent']);
    expect((await idTokenClaimsOf(server, registered, first.callback!)).amr).toEqual(['pwd', 'otp', 'mfa']);
    expect((await latestMail(server.db, account.email, 'recovery_code_used')).body).toContain('9');

    const reused = await atSecondStep(account, registered);
    const refused = await reused.answer({ recovery_code: recoveryCodes[0]! });
    expect(refused.status).toBe(401);
    expect(refused.body).toContain(t('secondStep.error.recovery'));
    expect(callbackOf(await reused.answer({ recovery_code: recoveryCodes[1]!.toLowerCase().replace(/-/g, ' ') }))).toBeDefined();
    // Every use is mailed, beyond the limit on other mail of one kind (MAIL_PER_RECIPIENT_PER_REQUESTER_PER_HOUR).
    for (const code of recoveryCodes.slice(2, 5))
      expect((await (await atSecondStep(account, registered)).answer({ recovery_code: code })).status).toBe(303);
    expect(server.config.rateLimits.mailPerRecipientPerRequesterPerHour).toBeLessThan(5);
    expect(await outboxFor(server.db, account.email, 'recovery_code_used')).toHaveLength(5);
    expect((await latestMail(server.db, account.email, 'recovery_code_used')).body).toContain('5');
  });

  it('are made anew on the Security page: the old ones stop working', async () => {
    const { account, agent, recoveryCodes } = await personWithAuthenticator();
    const page = await agent.request(`${server.issuer}/account/security`);
    const fresh = recoveryCodesIn((await submit(agent, server, page, '/account/security/recovery-codes')).body);
    expect(fresh).toHaveLength(10);
    expect(fresh).not.toContain(recoveryCodes[0]);
    expect(await latestMail(server.db, account.email, 'recovery_codes_regenerated')).toBeDefined();
    const registered = await createTestClient(server.db, server.validator);
    const { answer } = await atSecondStep(account, registered);
    expect((await answer({ recovery_code: recoveryCodes[0]! })).status).toBe(401);
    expect((await answer({ recovery_code: fresh[0]! })).status).toBe(303);
  });
});

describe('removing the authenticator app', () => {
  it('needs the password when it is the last second factor, mails the person, and takes the recovery codes with it', async () => {
    const { account, agent } = await personWithAuthenticator();
    const page = await agent.request(`${server.issuer}/account/security`);
    expect(page.body).toContain(t('security.lastFactor'));
    const withoutPassword = await submit(agent, server, page, '/account/security/authenticator/remove');
    expect(withoutPassword.status).toBe(400);
    expect(withoutPassword.body).toContain(t('security.error.passwordNeeded'));
    const removed = await submit(agent, server, page, '/account/security/authenticator/remove', { password: account.password });
    expect(removed.status).toBe(303);
    expect(await latestMail(server.db, account.email, 'factor_removed')).toBeDefined();
    const { rows } = await server.db.query('SELECT 1 FROM recovery_codes WHERE account_id = $1', [account.id]);
    expect(rows).toHaveLength(0);
    const registered = await createTestClient(server.db, server.validator);
    const result = await signInAtService(new UserAgent(), server, registered, { email: account.email, password: account.password });
    expect(result.pages).toEqual(['login', 'consent']);
  });
});

describe('levels a service asks for', () => {
  it('are advertised in discovery', async () => {
    const discovery = (await (await fetch(`${server.issuer}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
    expect(discovery['acr_values_supported']).toEqual([acrLevels.oneFactor, acrLevels.twoFactors, acrLevels.phishingResistant]);
    expect(discovery['claims_supported']).toEqual(expect.arrayContaining(['acr', 'amr', 'auth_time']));
  });

  it('offer a person without a second factor to set one up; declining returns unmet_authentication_requirements', async () => {
    const account = await createTestAccount(server.db);
    const registered = await createTestClient(server.db, server.validator, { requireAcr: acrLevels.twoFactors });
    const agent = new UserAgent();
    const result = await signInAtService(agent, server, registered, { email: account.email, password: account.password });
    expect(result.page!.body).toContain(t('setup.title'));
    expect(result.page!.body).toContain(t('setup.authenticator.start'));
    const declineAction = formActions(result.page!.body)
      .map(unescapeHtml)
      .find((action) => action.endsWith('/setup/decline'))!;
    const declined = await agent.follow(new URL(declineAction, server.issuer).href, registered.client.redirectUris[0]!, {
      form: { _csrf: /name="_csrf" value="([^"]+)"/.exec(result.page!.body)![1]! },
    });
    expect('stoppedAt' in declined && new URL(declined.stoppedAt).searchParams.get('error')).toBe('unmet_authentication_requirements');
  });

  it('let a person set up an authenticator app there and then, and finish the sign-in with two factors', async () => {
    const account = await createTestAccount(server.db);
    const registered = await createTestClient(server.db, server.validator, { requireAcr: acrLevels.twoFactors });
    const agent = new UserAgent();
    const offer = (await signInAtService(agent, server, registered, { email: account.email, password: account.password })).page!;
    const setupUrl = /href="([^"]+\/setup\/authenticator)"/.exec(offer.body)![1]!;
    const setup = await agent.request(new URL(unescapeHtml(setupUrl), server.issuer).href);
    const secret = totpSecretIn(setup.body);
    const codesPage = await submit(agent, server, setup, setupUrl, { code: totpCode(secret) });
    expect(recoveryCodesIn(codesPage.body)).toHaveLength(10);
    const continueAction = formActions(codesPage.body)
      .map(unescapeHtml)
      .find((action) => action.endsWith('/setup/done'))!;
    let next = await agent.follow(new URL(continueAction, server.issuer).href, registered.client.redirectUris[0]!, {
      form: { _csrf: /name="_csrf" value="([^"]+)"/.exec(codesPage.body)![1]! },
    });
    if (!('stoppedAt' in next)) {
      const consent = formActions(next.body).find((action) => action.endsWith('/consent'))!;
      next = await agent.follow(new URL(consent, server.issuer).href, registered.client.redirectUris[0]!, {
        form: { _csrf: /name="_csrf" value="([^"]+)"/.exec(next.body)![1]! },
      });
    }
    expect('stoppedAt' in next).toBe(true);
    const claims = await idTokenClaimsOf(server, registered, new URL((next as { stoppedAt: string }).stoppedAt));
    expect(claims.amr).toEqual(['pwd', 'otp', 'mfa']);
    expect(claims.acr).toBe(acrLevels.twoFactors);
    expect(await latestMail(server.db, account.email, 'factor_added')).toBeDefined();
  });

  it('step a signed-in session up with the second step alone; max_age=0 asks for the whole sign-in again', async () => {
    const account = await createTestAccount(server.db);
    const agent = new UserAgent();
    const plain = await createTestClient(server.db, server.validator);
    const first = await signInAtService(agent, server, plain, { email: account.email, password: account.password });
    const firstClaims = await idTokenClaimsOf(server, plain, first.callback!);
    expect(firstClaims.acr).toBe(acrLevels.oneFactor);
    expect(firstClaims.amr).toEqual(['pwd']);

    // The person turns on 2-step verification; a payments service then asks for two factors.
    const accountPages = new UserAgent();
    await signInToAccountPages(accountPages, server.issuer, account.email, account.password);
    const { secret } = await setUpAuthenticatorApp(accountPages, server);
    await ageAuthenticatorApp(server, account.id);
    const payments = await createTestClient(server.db, server.validator);
    const stepped = await signInAtService(agent, server, payments, { totpSecret: secret }, { acr_values: acrLevels.twoFactors });
    expect(stepped.pages).toEqual(['second-step', 'consent']);
    const steppedClaims = await idTokenClaimsOf(server, payments, stepped.callback!);
    expect(steppedClaims.acr).toBe(acrLevels.twoFactors);
    expect(steppedClaims.amr).toEqual(['pwd', 'otp', 'mfa']);

    // Already at that level: no page at all.
    const again = await signInAtService(agent, server, payments, {}, { acr_values: acrLevels.twoFactors });
    expect(again.pages).toEqual([]);
    // max_age=0: the whole sign-in again, and a new auth_time.
    const fresh = await signInAtService(
      agent,
      server,
      payments,
      // The next step's code: the current one was spent by the step-up.
      { email: account.email, password: account.password, totpSecret: secret, totpStep: 1 },
      {
        acr_values: acrLevels.twoFactors,
        max_age: '0',
      },
    );
    expect(fresh.pages.slice(0, 2)).toEqual(['login', 'second-step']);
    expect((await idTokenClaimsOf(server, payments, fresh.callback!)).auth_time).toBeGreaterThanOrEqual(steppedClaims.auth_time!);
  });

  it('answer prompt=none below the level with login_required', async () => {
    const account = await createTestAccount(server.db);
    const agent = new UserAgent();
    const plain = await createTestClient(server.db, server.validator);
    await signInAtService(agent, server, plain, { email: account.email, password: account.password });
    const silent = await signInAtService(agent, server, plain, {}, { prompt: 'none', acr_values: acrLevels.twoFactors });
    expect(silent.callback!.searchParams.get('error')).toBe('login_required');
  });

  it('offer a passkey to a person with only an authenticator app when a service asks for phishing resistance', async () => {
    const { account } = await personWithAuthenticator();
    const registered = await createTestClient(server.db, server.validator);
    const result = await signInAtService(
      new UserAgent(),
      server,
      registered,
      { email: account.email, password: account.password },
      {
        acr_values: acrLevels.phishingResistant,
      },
    );
    expect(result.page!.body).toContain(t('setup.passkeyTitle'));
    expect(result.page!.body).toContain('data-passkey="register"');
    expect(result.page!.body).not.toContain(t('setup.authenticator.start'));
  });
});
