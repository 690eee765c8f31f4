import {
  clientRegistrationSchema,
  clientUpdateSchema,
  getClient,
  listClients,
  registerClient,
  rotateClientSecret,
  updateClient,
  type ClientView,
} from '../../clients/store.js';
import { z } from 'zod';
import { recordAuditEvent } from '../../audit/log.js';
import { setInitialAccessTokenUses } from '../../oidc/artefacts.js';
import { registrationPolicy } from '../../oidc/registration-policy.js';
import { InvalidInput } from '../../errors.js';
import { eventNames, eventTypes, eventUris, isEventName, nameOfEvent, type EventName, type EventUri } from '../../events/event-types.js';
import { streamOfClient, type EventStream } from '../../events/streams.js';
import { configureEventStream } from '../../use-cases/event-streams.js';
import { removeClient } from '../../use-cases/remove-client.js';
import type { CliRuntime } from '../runtime.js';
import { parseOrThrow } from '../../validation.js';
import type { Command, OptionSpec, ParsedValues } from '../command.js';
import { parseFlags, withFlagErrors, type FlagInput } from '../flags.js';
import { describeRecord, describeTable } from '../output.js';

const metadataOptions: OptionSpec = {
  name: { type: 'string' },
  'redirect-uri': { type: 'string', multiple: true },
  'post-logout-redirect-uri': { type: 'string', multiple: true },
  'backchannel-logout-uri': { type: 'string' },
  'frontchannel-logout-uri': { type: 'string' },
  scope: { type: 'string', multiple: true },
  'subject-type': { type: 'string' },
  'grant-type': { type: 'string', multiple: true },
  'first-party': { type: 'boolean' },
  'id-token-signed-response-alg': { type: 'string' },
  'id-token-claims': { type: 'string' },
  'require-par': { type: 'boolean' },
  'dpop-bound': { type: 'boolean' },
  'require-acr': { type: 'string' },
  'optional-scope': { type: 'string', multiple: true },
  'events-endpoint': { type: 'string' },
  event: { type: 'string', multiple: true },
};

/** The flag behind each field of the client schemas, for messages in the operator's terms. */
const flagOf: Record<string, string> = {
  name: '--name',
  redirectUris: '--redirect-uri',
  postLogoutRedirectUris: '--post-logout-redirect-uri',
  backchannelLogoutUri: '--backchannel-logout-uri',
  frontchannelLogoutUri: '--frontchannel-logout-uri',
  scopes: '--scope',
  optionalScopes: '--optional-scope',
  subjectType: '--subject-type',
  grantTypes: '--grant-type',
  firstParty: '--first-party',
  public: '--public',
  authMethod: '--auth-method',
  idTokenSignedResponseAlg: '--id-token-signed-response-alg',
  idTokenClaims: '--id-token-claims',
  requirePar: '--require-par',
  dpopBound: '--dpop-bound',
  requireAcr: '--require-acr',
};

/** --scope may be repeated or space/comma separated: --scope "openid profile". */
function splitList(values: unknown): string[] | undefined {
  if (!Array.isArray(values)) return undefined;
  return values.flatMap((value) => String(value).split(/[\s,]+/)).filter(Boolean);
}

function metadataFromFlags(values: ParsedValues) {
  return {
    name: values['name'] as string | undefined,
    redirectUris: values['redirect-uri'] as string[] | undefined,
    postLogoutRedirectUris: values['post-logout-redirect-uri'] as string[] | undefined,
    scopes: splitList(values['scope']),
    optionalScopes: splitList(values['optional-scope']),
    subjectType: values['subject-type'],
    grantTypes: splitList(values['grant-type']),
    firstParty: values['first-party'] as boolean | undefined,
    idTokenSignedResponseAlg: values['id-token-signed-response-alg'],
    idTokenClaims: values['id-token-claims'],
    requirePar: values['require-par'] as boolean | undefined,
    dpopBound: values['dpop-bound'] as boolean | undefined,
    // `none` lifts a requirement (clients update); on clients add it is the default.
    requireAcr: values['require-acr'] === 'none' ? null : values['require-acr'],
  };
}

/** Drops fields no flag set, so the schema's defaults apply and updates touch only what was given. */
const given = (fields: Record<string, unknown>) => Object.fromEntries(Object.entries(fields).filter(([, value]) => value !== undefined));

/** The event stream flags (--events-endpoint URL, --event NAME…), as the stream settings to apply; undefined when neither was given. */
async function streamFromFlags(runtime: CliRuntime, clientId: string, values: ParsedValues) {
  const endpoint = values['events-endpoint'] as string | undefined;
  const names = values['event'] as string[] | undefined;
  if (endpoint === undefined && names === undefined) return undefined;
  for (const name of names ?? []) {
    if (!isEventName(name)) throw new InvalidInput(`--event ${JSON.stringify(name)}: must be one of ${eventNames.join(', ')}`);
  }
  const current = await streamOfClient(runtime.db, clientId);
  const endpointUrl = endpoint ?? current?.endpointUrl;
  if (endpointUrl === undefined) throw new InvalidInput('--event needs --events-endpoint <url>: the service has no event stream yet');
  const eventsRequested = names
    ? names.map((name) => eventTypes[name as EventName])
    : ((current?.eventsRequested as EventUri[] | undefined) ?? eventUris);
  return { endpointUrl, eventsRequested };
}

/** A service's event stream as the CLI shows it: short event names. */
function streamView(stream: EventStream | undefined) {
  return stream
    ? { endpointUrl: stream.endpointUrl, events: stream.eventsRequested.map((uri) => nameOfEvent(uri) ?? uri), status: stream.status }
    : null;
}

function clientText(client: ClientView, secret?: string, stream?: EventStream): string {
  const lines = describeRecord({
    client_id: client.clientId,
    name: client.name,
    type: client.public ? 'public (PKCE, no secret)' : `confidential (${client.authMethod})`,
    redirect_uris: client.redirectUris,
    post_logout_redirect_uris: client.postLogoutRedirectUris,
    backchannel_logout_uri: client.backchannelLogoutUri,
    frontchannel_logout_uri: client.frontchannelLogoutUri,
    scopes: client.scopes,
    optional_scopes: client.optionalScopes.length ? client.optionalScopes : 'none',
    grant_types: client.grantTypes,
    subject_type: client.subjectType,
    first_party: client.firstParty ? 'yes (no consent page)' : 'no',
    id_token_signed_response_alg: client.idTokenSignedResponseAlg,
    id_token_claims: client.idTokenClaims === 'granted' ? 'granted (the claims of the granted scopes)' : 'minimal (sub only)',
    require_par: client.requirePar ? 'yes' : 'no',
    dpop_bound: client.dpopBound ? 'yes (access tokens only with DPoP)' : 'no',
    require_acr: client.requireAcr ?? 'none (any complete sign-in)',
    events_endpoint: stream ? `${stream.endpointUrl} (${stream.status})` : 'none',
    events: stream ? stream.eventsRequested.map((uri) => nameOfEvent(uri) ?? uri).join(' ') : 'none',
    created_at: client.createdAt,
  });
  return secret ? `${lines}\n\nclient_secret  ${secret}\nThe secret is shown only now. Store it in the service's secret store.` : lines;
}

const initialTokenFlags = z.object({
  ttl: z.coerce
    .number()
    .int()
    .min(60)
    .max(30 * 86400)
    .default(86400),
  uses: z.coerce.number().int().min(1).max(10000).default(1),
});

export const clientCommands: Command[] = [
  {
    name: 'clients add',
    usage:
      'idp clients add --name <name> --redirect-uri <uri>... [--post-logout-redirect-uri <uri>]... [--backchannel-logout-uri <uri>] [--frontchannel-logout-uri <uri>] [--scope <scope>]... [--optional-scope <scope>]... [--subject-type pairwise|public] [--public] [--auth-method client_secret_basic|client_secret_post] [--grant-type <type>]... [--first-party] [--id-token-signed-response-alg RS256|ES256] [--id-token-claims granted|minimal] [--require-par] [--dpop-bound] [--require-acr urn:group-idp:acr:1fa|urn:group-idp:acr:2fa|phr|none] [--events-endpoint <https url> [--event <name>]...]',
    summary: 'register a service; prints its client_id and (once) its secret',
    options: { ...metadataOptions, public: { type: 'boolean' }, 'auth-method': { type: 'string' } },
    async run(runtime, values) {
      const input: FlagInput = {
        flagOf,
        values: given({
          ...metadataFromFlags(values),
          requireAcr: values['require-acr'] === 'none' ? undefined : values['require-acr'],
          name: (values['name'] as string | undefined) ?? '',
          backchannelLogoutUri: values['backchannel-logout-uri'],
          frontchannelLogoutUri: values['frontchannel-logout-uri'],
          public: values['public'] === true,
          authMethod: values['auth-method'],
        }),
      };
      const registration = parseFlags(clientRegistrationSchema, input);
      const { client, clientSecret } = await withFlagErrors(input, async () =>
        registerClient(runtime.db, registration, await runtime.clientValidator()),
      );
      await recordAuditEvent(runtime.db, { event: 'client.added', outcome: 'success', actor: 'admin', clientId: client.clientId });
      const streamSettings = await streamFromFlags(runtime, client.clientId, values);
      const stream = streamSettings ? await configureEventStream(await runtime.workflowDeps(), client.clientId, streamSettings) : undefined;
      return {
        json: { ...client, eventStream: streamView(stream), clientSecret: clientSecret ?? null },
        text: clientText(client, clientSecret, stream),
      };
    },
  },
  {
    name: 'clients list',
    usage: 'idp clients list',
    summary: 'list registered services',
    options: {},
    async run(runtime) {
      const clients = await listClients(runtime.db);
      return {
        json: clients,
        text: describeTable(
          clients.map((c) => ({
            client_id: c.clientId,
            name: c.name,
            type: c.public ? 'public' : 'confidential',
            subject: c.subjectType,
            first_party: c.firstParty ? 'yes' : 'no',
          })),
          ['client_id', 'name', 'type', 'subject', 'first_party'],
        ),
      };
    },
  },
  {
    name: 'clients show',
    usage: 'idp clients show <client_id>',
    summary: 'show one service (never its secret)',
    options: {},
    positionals: ['client_id'],
    async run(runtime, _values, [clientId]) {
      const client = await getClient(runtime.db, clientId!);
      const stream = await streamOfClient(runtime.db, client.clientId);
      return { json: { ...client, eventStream: streamView(stream) }, text: clientText(client, undefined, stream) };
    },
  },
  {
    name: 'clients update',
    usage:
      'idp clients update <client_id> [--name ..] [--redirect-uri ..].. [--backchannel-logout-uri <uri>|""] [--scope ..].. [--optional-scope ..].. [--grant-type ..].. [--subject-type ..] [--first-party|--no-first-party] [--id-token-signed-response-alg RS256|ES256] [--id-token-claims granted|minimal] [--require-par|--no-require-par] [--dpop-bound|--no-dpop-bound] [--require-acr <level>|none] [--events-endpoint <https url>|""] [--event account-purged|account-disabled|account-enabled|identifier-changed|credential-change|session-revoked]...',
    summary: 'change a service; list flags replace the whole list',
    options: metadataOptions,
    positionals: ['client_id'],
    async run(runtime, values, [clientId]) {
      const backchannel = values['backchannel-logout-uri'] as string | undefined;
      const frontchannel = values['frontchannel-logout-uri'] as string | undefined;
      const input: FlagInput = {
        flagOf,
        values: given({
          ...metadataFromFlags(values),
          backchannelLogoutUri: backchannel === '' ? null : backchannel,
          frontchannelLogoutUri: frontchannel === '' ? null : frontchannel,
        }),
      };
      const changes = parseFlags(clientUpdateSchema, input);
      const streamSettings = await streamFromFlags(runtime, (await getClient(runtime.db, clientId!)).clientId, values);
      const metadataChanges = Object.values(changes).some((value) => value !== undefined);
      const client =
        metadataChanges || !streamSettings
          ? await withFlagErrors(input, async () => updateClient(runtime.db, clientId!, changes, await runtime.clientValidator()))
          : await getClient(runtime.db, clientId!);
      if (metadataChanges)
        await recordAuditEvent(runtime.db, { event: 'client.updated', outcome: 'success', actor: 'admin', clientId: client.clientId });
      const stream = streamSettings
        ? await configureEventStream(await runtime.workflowDeps(), client.clientId, streamSettings)
        : await streamOfClient(runtime.db, client.clientId);
      return { json: { ...client, eventStream: streamView(stream) }, text: clientText(client, undefined, stream) };
    },
  },
  {
    name: 'clients rotate-secret',
    usage: 'idp clients rotate-secret <client_id>',
    summary: 'issue a new secret; the old one stops working at once',
    options: {},
    positionals: ['client_id'],
    async run(runtime, _values, [clientId]) {
      const { client, clientSecret } = await rotateClientSecret(runtime.db, clientId!);
      await recordAuditEvent(runtime.db, { event: 'client.secret_rotated', outcome: 'success', actor: 'admin', clientId: client.clientId });
      return { json: { clientId: client.clientId, clientSecret }, text: clientText(client, clientSecret) };
    },
  },
  {
    name: 'clients remove',
    usage: 'idp clients remove <client_id>',
    summary: 'remove a service and revoke everything issued to it',
    options: {},
    positionals: ['client_id'],
    async run(runtime, _values, [clientId]) {
      await removeClient(runtime, clientId!);
      return { json: { clientId, removed: true }, text: `removed client ${clientId}` };
    },
  },
  {
    name: 'clients initial-token',
    usage: 'idp clients initial-token [--ttl <seconds>] [--uses <n>]',
    summary:
      'an initial access token for dynamic registration, good for one registration unless --uses (only used when DYNAMIC_REGISTRATION=true)',
    options: { ttl: { type: 'string' }, uses: { type: 'string' } },
    async run(runtime, values) {
      const { ttl, uses } = parseOrThrow(initialTokenFlags, { ttl: values['ttl'], uses: values['uses'] });
      const provider = await runtime.provider();
      const token = await new provider.InitialAccessToken({ expiresIn: ttl, policies: [registrationPolicy] }).save();
      await setInitialAccessTokenUses(runtime.db, token, uses);
      const expiresAt = new Date(Date.now() + ttl * 1000);
      return {
        json: { initialAccessToken: token, expiresAt, uses, registrationEnabled: runtime.config.dynamicRegistration },
        text:
          `initial access token  ${token}\nexpires               ${expiresAt.toISOString()}\nregistrations         ${uses}\nShown only now. Send it as "Authorization: Bearer <token>" to /reg.` +
          (runtime.config.dynamicRegistration ? '' : '\nNote: DYNAMIC_REGISTRATION is false, so /reg is off until it is enabled.'),
      };
    },
  },
];
