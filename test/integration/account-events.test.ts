import * as oidc from 'openid-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { findAccountById } from '../../src/accounts/store.js';
import { eventTypes, type EventName } from '../../src/events/event-types.js';
import { idp, json } from '../helpers/cli.js';
import { createTestAccount, uniqueEmail } from '../helpers/fixtures.js';
import { waitFor } from '../helpers/listener.js';
import {
  artefactCounts,
  connectService,
  latestMail,
  linkIn,
  postForm,
  signInToAccountPages,
  type ConnectedService,
} from '../helpers/self-service.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { SetReceiver } from '../helpers/set-receiver.js';
import { setUpAuthenticatorApp } from '../helpers/strong-sign-in.js';
import { hiddenField, UserAgent } from '../helpers/user-agent.js';

/*
 * Account events to services (OpenID SSF 1.0, RISC and CAEP, pushed as SETs by RFC 8935):
 * each subscribed service hears of changes to people connected to it, under its own sub,
 * checked by a receiver that verifies every SET with jose.
 */

const PUSH = 'urn:ietf:rfc:8935';
const allEvents = Object.keys(eventTypes) as EventName[];

let server: TestServer;
const receivers: SetReceiver[] = [];

beforeAll(async () => {
  server = await startTestServer();
});
afterEach(() => {
  for (const receiver of receivers) {
    // A SET the receiver could not verify is a failure of the transmitter, whichever test caused it.
    expect(receiver.rejected).toEqual([]);
  }
});
afterAll(async () => {
  await server?.close();
  await Promise.all(receivers.map((receiver) => receiver.stop()));
});

interface SubscribedService extends ConnectedService {
  receiver: SetReceiver;
  clientId: string;
  /** The sub this service received in its ID token. */
  sub: string;
}

let nextPort = 9400;

/** The admin CLI, run with the server's environment (ISSUER included), as operators run it. */
const admin = (args: string[]) => idp(args, { env: { ISSUER: server.issuer, ALLOW_PRIVATE_NETWORK_FETCH: 'true' } });

/** A service that subscribes its own stream through the SSF API (client_credentials token). */
async function subscribeThroughApi(service: ConnectedService, endpointUrl: string, events: EventName[]): Promise<void> {
  const { access_token } = await oidc.clientCredentialsGrant(service.config);
  const created = await fetch(`${server.issuer}/ssf/streams`, {
    method: 'POST',
    headers: { authorization: `Bearer ${access_token}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      delivery: { method: PUSH, endpoint_url: endpointUrl },
      events_requested: events.map((name) => eventTypes[name]),
    }),
  });
  expect(created.status, await created.clone().text()).toBe(201);
}

/** Connects a service for the person through the hosted pages and subscribes it to events. */
async function subscribedService(
  agent: UserAgent,
  person: { email: string; password: string },
  options: { scope?: string; events?: EventName[]; by?: 'api' | 'cli'; receiverStatus?: number } = {},
): Promise<SubscribedService> {
  const receiver = await new SetReceiver(server.issuer, options.receiverStatus).start();
  receivers.push(receiver);
  const service = await connectService(server, agent, person, {
    port: nextPort++,
    scope: options.scope ?? 'openid profile email offline_access',
    client: { grantTypes: ['authorization_code', 'refresh_token', 'client_credentials'] },
  });
  const clientId = service.registered.client.clientId;
  receiver.audience = clientId;
  const events = options.events ?? allEvents;
  if (options.by === 'cli') {
    const args = [
      'clients',
      'update',
      clientId,
      '--events-endpoint',
      receiver.url,
      ...events.flatMap((name) => ['--event', name]),
      '--json',
    ];
    json(await admin(args));
  } else {
    await subscribeThroughApi(service, receiver.url, events);
  }
  return { ...service, receiver, clientId, sub: service.tokens.claims()!.sub };
}

/** A person connected to two subscribed services: one that got the email, one that did not. */
async function personWithTwoServices() {
  const account = await createTestAccount(server.db);
  const agent = new UserAgent();
  const withEmail = await subscribedService(agent, account);
  const withoutEmail = await subscribedService(agent, account, { scope: 'openid profile', by: 'cli' });
  const accountPage = await signInToAccountPages(agent, server.issuer, account.email, account.password);
  return { account, agent, accountPage, withEmail, withoutEmail };
}

/** What a service must find in a SET about the person: its own view of them, nobody else's. */
function expectAbout(event: { claims: { sub_id: unknown; aud?: unknown; iss?: unknown } }, service: SubscribedService) {
  expect(event.claims.sub_id).toEqual({ format: 'iss_sub', iss: server.issuer, sub: service.sub });
  expect(event.claims.aud).toBe(service.clientId);
}

async function queuedTypes(clientId: string): Promise<string[]> {
  const { rows } = await server.db.query<{ event_type: string }>('SELECT event_type FROM event_deliveries WHERE client_id = $1', [
    clientId,
  ]);
  return rows.map((row) => row.event_type);
}

describe('account events to services', () => {
  it('a password change reaches each service under its own sub, never the other service’s', async () => {
    const { account, agent, accountPage, withEmail, withoutEmail } = await personWithTwoServices();
    expect(withEmail.sub).not.toBe(withoutEmail.sub); // pairwise

    const page = await agent.request(`${server.issuer}/account/password`);
    const changed = await postForm(agent, server.issuer, page, '/account/password', {
      currentPassword: account.password,
      newPassword: 'a fresh passphrase for events',
    });
    expect(changed.status).toBe(303);
    void accountPage;

    for (const service of [withEmail, withoutEmail]) {
      const event = await service.receiver.next('credential-change');
      expectAbout(event, service);
      expect(event.payload).toMatchObject({ credential_type: 'password', change_type: 'update', initiating_entity: 'user' });
      expect(event.payload['event_timestamp']).toEqual(expect.any(Number));
    }
    // One change, one transaction id, one distinct jti per service.
    const [a, b] = [withEmail.receiver.of('credential-change')[0]!, withoutEmail.receiver.of('credential-change')[0]!];
    expect(a.claims.txn).toBe(b.claims.txn);
    expect(a.claims.jti).not.toBe(b.claims.jti);
    const everythingB = JSON.stringify(withoutEmail.receiver.events.map((event) => event.claims));
    expect(everythingB).not.toContain(withEmail.sub);
    expect(everythingB).not.toContain(account.id);
  });

  it('a reset tells the services that the password changed', async () => {
    const account = await createTestAccount(server.db);
    const service = await subscribedService(new UserAgent(), account, { events: ['credential-change'] });
    const agent = new UserAgent();
    const forgot = await agent.request(`${server.issuer}/password/forgot`);
    await agent.request(`${server.issuer}/password/forgot`, { form: { _csrf: hiddenField(forgot.body, '_csrf'), email: account.email } });
    const link = linkIn((await waitFor(() => latestMail(server.db, account.email, 'reset_password').catch(() => undefined))).body);
    const resetPage = await agent.request(link);
    const done = await agent.request(`${server.issuer}/password/reset`, {
      form: {
        _csrf: hiddenField(resetPage.body, '_csrf'),
        token: hiddenField(resetPage.body, 'token'),
        password: 'reset passphrase for events',
      },
    });
    expect(done.status).toBe(200);
    const event = await service.receiver.next('credential-change');
    expectAbout(event, service);
    expect(event.payload).toMatchObject({ credential_type: 'password', change_type: 'update' });
  });

  it('adding and removing an authenticator app tells the services of the second-factor change', async () => {
    const account = await createTestAccount(server.db);
    const agent = new UserAgent();
    const service = await subscribedService(agent, account, { events: ['credential-change'] });
    await signInToAccountPages(agent, server.issuer, account.email, account.password);
    await setUpAuthenticatorApp(agent, server);
    const added = await service.receiver.next('credential-change');
    expectAbout(added, service);
    expect(added.payload).toMatchObject({ credential_type: 'app', change_type: 'create', initiating_entity: 'user' });

    json(await admin(['accounts', 'mfa', 'reset', account.email, '--json']));
    expect((await service.receiver.next('credential-change', 2)).payload).toMatchObject({
      credential_type: 'app',
      change_type: 'delete',
      initiating_entity: 'admin',
    });
  });

  it('signing out everywhere tells each service its sessions were revoked', async () => {
    const { agent, withEmail, withoutEmail } = await personWithTwoServices();
    const activity = await agent.request(`${server.issuer}/account/activity`);
    expect((await postForm(agent, server.issuer, activity, '/account/activity/sign-out-everywhere')).status).toBe(303);
    for (const service of [withEmail, withoutEmail]) {
      const event = await service.receiver.next('session-revoked');
      expectAbout(event, service);
      expect(event.payload).toMatchObject({ initiating_entity: 'user' });
    }
  });

  it('an email change is told only to the services that received the email', async () => {
    const { account, agent, withEmail, withoutEmail } = await personWithTwoServices();
    const newEmail = uniqueEmail('moved');
    const page = await agent.request(`${server.issuer}/account`);
    expect((await postForm(agent, server.issuer, page, '/account/email', { newEmail, password: account.password })).status).toBe(303);
    const link = linkIn((await latestMail(server.db, newEmail, 'change_email')).body);
    const linkAgent = new UserAgent();
    const confirm = await linkAgent.request(link);
    const confirmed = await linkAgent.request(new URL(link).origin + new URL(link).pathname, {
      form: { _csrf: hiddenField(confirm.body, '_csrf'), token: hiddenField(confirm.body, 'token') },
    });
    expect(confirmed.status).toBe(200);
    expect((await findAccountById(server.db, account.id))!.email).toBe(newEmail);

    const event = await withEmail.receiver.next('identifier-changed');
    expectAbout(event, withEmail);
    expect(event.payload).toMatchObject({ 'new-value': newEmail });
    // Queued in the change's transaction: what is not queued now never will be.
    expect(await queuedTypes(withoutEmail.clientId)).not.toContain(eventTypes['identifier-changed']);
  });

  it('an administrator disabling an account ends its sessions and tells the services; enabling it tells them again', async () => {
    const account = await createTestAccount(server.db);
    const service = await subscribedService(new UserAgent(), account);
    expect(json(await admin(['accounts', 'disable', account.email, '--json']))).toMatchObject({ id: account.id, disabled: true });

    expectAbout(await service.receiver.next('account-disabled'), service);
    expect(await artefactCounts(server.db, account.id)).not.toHaveProperty('Session');
    await expect(oidc.refreshTokenGrant(service.config, service.tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    const refused = await new UserAgent().request(`${server.issuer}/account/sign-in`);
    const attempt = await new UserAgent().request(`${server.issuer}/account/sign-in`, {
      form: { _csrf: hiddenField(refused.body, '_csrf'), email: account.email, password: account.password, next: '/account' },
    });
    expect(attempt.status).not.toBe(303);

    expect(json(await admin(['accounts', 'enable', account.email, '--json']))).toMatchObject({ id: account.id, disabled: false });
    const enabled = await service.receiver.next('account-enabled');
    expectAbout(enabled, service);
    expect(enabled.payload).toEqual({});
    await signInToAccountPages(new UserAgent(), server.issuer, account.email, account.password);
  });

  it('a deletion on the account page tells every service, and the goodbye page names them', async () => {
    const { account, agent, withEmail, withoutEmail } = await personWithTwoServices();
    // An earlier event, accepted: the export lists it before the account goes.
    await agent
      .request(`${server.issuer}/account/activity`)
      .then((page) => postForm(agent, server.issuer, page, '/account/activity/sign-out-everywhere'));
    await withEmail.receiver.next('session-revoked');
    await waitFor(
      async () =>
        (await server.db.query(`SELECT 1 FROM event_deliveries WHERE client_id = $1 AND status = 'delivered'`, [withEmail.clientId]))
          .rowCount,
    );
    const data = await agent.request(`${server.issuer}/account/data`);
    const exported = JSON.parse((await postForm(agent, server.issuer, data, '/account/data/export')).body) as {
      eventsSent: { clientId: string; event: string; accepted: boolean; subject: unknown }[];
    };
    expect(exported.eventsSent).toContainEqual(
      expect.objectContaining({
        clientId: withEmail.clientId,
        event: 'session-revoked',
        accepted: true,
        subject: expect.objectContaining({ sub: withEmail.sub }),
      }),
    );

    const form = await agent.request(`${server.issuer}/account/delete`);
    const goodbye = await postForm(agent, server.issuer, form, '/account/delete', { password: account.password, confirm: 'yes' });
    expect(goodbye.status).toBe(200);
    expect(goodbye.body).toContain('These services were told that your account is gone');
    for (const service of [withEmail, withoutEmail]) {
      expect(goodbye.body).toContain(service.registered.client.name);
      const event = await service.receiver.next('account-purged');
      expectAbout(event, service);
      expect(event.payload).toEqual({});
    }
    // Nothing in what remains points back to the account.
    const { rows } = await server.db.query('SELECT 1 FROM event_deliveries WHERE account_id = $1', [account.id]);
    expect(rows).toEqual([]);
  });

  it('a deletion by an administrator tells the services too, and says which', async () => {
    const account = await createTestAccount(server.db);
    const service = await subscribedService(new UserAgent(), account, { by: 'cli', events: ['account-purged'] });
    const removed = json<{ toldOfDeletion: string[] }>(await admin(['accounts', 'remove', account.email, '--json']));
    expect(removed.toldOfDeletion).toEqual([service.clientId]);
    expectAbout(await service.receiver.next('account-purged'), service);
  });

  it('a service hears only the events it asked for, and only about people connected to it', async () => {
    const account = await createTestAccount(server.db);
    const other = await createTestAccount(server.db);
    const onlyPurge = await subscribedService(new UserAgent(), account, { events: ['account-purged'] });
    const page = await signInToAccountPages(new UserAgent(), server.issuer, other.email, other.password);
    void page;
    json(await admin(['accounts', 'disable', account.email, '--json']));
    json(await admin(['accounts', 'disable', other.email, '--json']));
    expect(await queuedTypes(onlyPurge.clientId)).toEqual([]);
    json(await admin(['accounts', 'remove', other.email, '--json']));
    expect(await queuedTypes(onlyPurge.clientId)).toEqual([]);
  });

  it('a receiver that is down, or answers 500, is retried and recorded as failed; the page never waits', async () => {
    const account = await createTestAccount(server.db);
    const agent = new UserAgent();
    const failing = await subscribedService(agent, account, { receiverStatus: 500, events: ['credential-change'] });
    const down = await subscribedService(agent, account, { events: ['credential-change'] });
    await down.receiver.stop();

    const page = await signInToAccountPages(agent, server.issuer, account.email, account.password).then(() =>
      agent.request(`${server.issuer}/account/password`),
    );
    const changed = await postForm(agent, server.issuer, page, '/account/password', {
      currentPassword: account.password,
      newPassword: 'passphrase while services are down',
    });
    expect(changed.status).toBe(303);
    // The page answered while the deliveries were still being tried.
    const { rows: right } = await server.db.query<{ status: string }>('SELECT status FROM event_deliveries WHERE client_id = ANY($1)', [
      [failing.clientId, down.clientId],
    ]);
    expect(right.map((row) => row.status)).toEqual(['pending', 'pending']);

    for (const service of [failing, down]) {
      const outcome = await waitFor(async () => {
        const { rows } = await server.db.query<{ status: string; attempts: number; last_error: string }>(
          `SELECT status, attempts, last_error FROM event_deliveries WHERE client_id = $1`,
          [service.clientId],
        );
        return rows[0]?.status === 'failed' ? rows[0] : undefined;
      });
      expect(outcome.attempts).toBeGreaterThan(1);
    }
    const listed = json<{ clientId: string; status: string; lastError: string }[]>(
      await admin(['events', 'deliveries', '--client', failing.clientId, '--status', 'failed', '--json']),
    );
    expect(listed).toEqual([
      expect.objectContaining({ clientId: failing.clientId, status: 'failed', lastError: 'the receiver answered HTTP 500' }),
    ]);
    // The failing receiver verified the SET before answering 500: it was a good one.
    expect(failing.receiver.events.length).toBeGreaterThan(1);
    receivers.splice(receivers.indexOf(down.receiver), 1);
  });
});

describe('the SSF stream management API', () => {
  async function serviceToken() {
    const account = await createTestAccount(server.db);
    const service = await connectService(server, new UserAgent(), account, {
      port: nextPort++,
      client: { grantTypes: ['authorization_code', 'refresh_token', 'client_credentials'] },
    });
    const { access_token } = await oidc.clientCredentialsGrant(service.config);
    return { service, token: access_token, clientId: service.registered.client.clientId };
  }

  async function call(token: string | undefined, method: string, path: string, body?: unknown, raw?: string) {
    const response = await fetch(`${server.issuer}${path}`, {
      method,
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), 'content-type': 'application/json' },
      body: raw ?? (body === undefined ? undefined : JSON.stringify(body)),
    });
    const text = await response.text();
    return { status: response.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
  }

  const streamOf = async (clientId: string) =>
    (await server.db.query('SELECT endpoint_url, events_requested FROM event_streams WHERE client_id = $1', [clientId])).rows;

  it('publishes the transmitter metadata', async () => {
    const response = await fetch(`${server.issuer}/.well-known/ssf-configuration`);
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({
      spec_version: '1_0',
      issuer: server.issuer,
      jwks_uri: `${server.issuer}/jwks`,
      delivery_methods_supported: [PUSH],
      configuration_endpoint: `${server.issuer}/ssf/streams`,
      status_endpoint: `${server.issuer}/ssf/status`,
      verification_endpoint: `${server.issuer}/ssf/verify`,
    });
  });

  it('creates, reads, updates, pauses, verifies and deletes a stream', async () => {
    const { token, clientId } = await serviceToken();
    const receiver = await new SetReceiver(server.issuer).start();
    receivers.push(receiver);
    receiver.audience = clientId;
    const created = await call(token, 'POST', '/ssf/streams', {
      delivery: { method: PUSH, endpoint_url: receiver.url },
      events_requested: [eventTypes['account-purged']],
      description: 'shop',
    });
    expect(created).toMatchObject({
      status: 201,
      body: { iss: server.issuer, aud: clientId, events_delivered: [eventTypes['account-purged']] },
    });
    const streamId = created.body['stream_id'] as string;
    expect((await call(token, 'POST', '/ssf/streams', { delivery: { method: PUSH, endpoint_url: receiver.url } })).status).toBe(409);
    expect((await call(token, 'GET', `/ssf/streams?stream_id=${streamId}`)).body).toMatchObject({
      stream_id: streamId,
      description: 'shop',
    });

    const patched = await call(token, 'PATCH', '/ssf/streams', {
      stream_id: streamId,
      events_requested: [eventTypes['credential-change']],
    });
    expect(patched.body).toMatchObject({ events_requested: [eventTypes['credential-change']], delivery: { endpoint_url: receiver.url } });
    expect(await call(token, 'POST', '/ssf/status', { stream_id: streamId, status: 'paused', reason: 'maintenance' })).toMatchObject({
      status: 200,
      body: { status: 'paused', reason: 'maintenance' },
    });
    expect((await call(token, 'GET', `/ssf/status?stream_id=${streamId}`)).body).toMatchObject({ status: 'paused' });
    await call(token, 'POST', '/ssf/status', { stream_id: streamId, status: 'enabled' });

    expect((await call(token, 'POST', '/ssf/verify', { stream_id: streamId, state: 'abc-123' })).status).toBe(204);
    const verification = await waitFor(() => receiver.events.find((event) => event.uri.endsWith('/verification')));
    expect(verification.payload).toEqual({ state: 'abc-123' });
    expect(verification.claims.sub_id).toEqual({ format: 'opaque', id: streamId });
    expect((await call(token, 'POST', '/ssf/verify', { stream_id: streamId })).status).toBe(429);

    expect((await call(token, 'DELETE', `/ssf/streams?stream_id=${streamId}`)).status).toBe(204);
    expect(await streamOf(clientId)).toEqual([]);
  });

  it('refuses bad requests with an SSF error and stores nothing', async () => {
    const { token, clientId } = await serviceToken();
    const good = { method: PUSH, endpoint_url: 'https://receiver.example/events' };
    const refusals: [string | undefined, string, string, unknown, number, string?][] = [
      [undefined, 'POST', '/ssf/streams', { delivery: good }, 401],
      ['not-a-token', 'GET', '/ssf/streams', undefined, 401],
      [token, 'POST', '/ssf/streams', { delivery: good, events_requested: ['https://example.com/made-up'] }, 400],
      [token, 'POST', '/ssf/streams', { delivery: { method: 'urn:ietf:rfc:8936', endpoint_url: good.endpoint_url } }, 400],
      [token, 'POST', '/ssf/streams', { delivery: { method: PUSH, endpoint_url: 'ftp://receiver.example/x' } }, 400],
      [token, 'POST', '/ssf/streams', { delivery: { method: PUSH, endpoint_url: 'not a url' } }, 400],
      [token, 'POST', '/ssf/streams', undefined, 400, '{"delivery":'],
      [token, 'POST', '/ssf/streams', { delivery: good, description: 'x'.repeat(20_000) }, 413],
      [token, 'GET', '/ssf/status', undefined, 404],
    ];
    for (const [bearer, method, path, body, status, raw] of refusals) {
      const answer = await call(bearer, method, path, body, raw);
      expect(answer.status, `${method} ${path} ${JSON.stringify(body)?.slice(0, 80)}`).toBe(status);
      expect(answer.body['error']).toEqual(expect.any(String));
    }
    expect(await streamOf(clientId)).toEqual([]);
  });

  it('a service cannot see or change another service’s stream', async () => {
    const owner = await serviceToken();
    const intruder = await serviceToken();
    const created = await call(owner.token, 'POST', '/ssf/streams', {
      delivery: { method: PUSH, endpoint_url: 'https://owner.example/events' },
      events_requested: [eventTypes['account-purged']],
    });
    const streamId = created.body['stream_id'] as string;
    expect((await call(intruder.token, 'GET', `/ssf/streams?stream_id=${streamId}`)).status).toBe(404);
    expect(
      (
        await call(intruder.token, 'PATCH', '/ssf/streams', {
          stream_id: streamId,
          delivery: { method: PUSH, endpoint_url: 'https://evil.example/' },
        })
      ).status,
    ).toBe(404);
    expect((await call(intruder.token, 'DELETE', `/ssf/streams?stream_id=${streamId}`)).status).toBe(404);
    expect((await call(intruder.token, 'POST', '/ssf/status', { stream_id: streamId, status: 'disabled' })).status).toBe(404);
    expect(await streamOf(owner.clientId)).toEqual([
      { endpoint_url: 'https://owner.example/events', events_requested: [eventTypes['account-purged']] },
    ]);
    // An access token a person's sign-in gave the service is not a service credential.
    expect((await call(owner.service.tokens.access_token, 'GET', '/ssf/streams')).status).toBe(401);
  });

  it('refuses loopback and private receivers unless the development switch is on', async () => {
    const strict = await startTestServer({ env: { ALLOW_PRIVATE_NETWORK_FETCH: 'false' } });
    // Its workers would refuse the loopback receivers of the tests running beside it (they
    // share the database, as instances do): this server only answers the API.
    await Promise.all([strict.eventDeliveries.stop(), strict.logoutDeliveries.stop()]);
    try {
      const account = await createTestAccount(strict.db);
      const service = await connectService(strict, new UserAgent(), account, {
        port: nextPort++,
        client: { grantTypes: ['authorization_code', 'client_credentials'] },
      });
      const { access_token } = await oidc.clientCredentialsGrant(service.config);
      for (const endpoint_url of [
        'http://127.0.0.1:9/events',
        'https://127.0.0.1/events',
        'https://10.1.2.3/events',
        'http://receiver.example/events',
      ]) {
        const response = await fetch(`${strict.issuer}/ssf/streams`, {
          method: 'POST',
          headers: { authorization: `Bearer ${access_token}`, 'content-type': 'application/json' },
          body: JSON.stringify({ delivery: { method: PUSH, endpoint_url } }),
        });
        expect(response.status, endpoint_url).toBe(400);
      }
      expect(await streamOf(service.registered.client.clientId)).toEqual([]);
    } finally {
      await strict.close();
    }
  });
});
