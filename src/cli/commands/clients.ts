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
import { removeClient } from '../../use-cases/remove-client.js';
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
};

/** The flag behind each field of the client schemas, for messages in the operator's terms. */
const flagOf: Record<string, string> = {
  name: '--name',
  redirectUris: '--redirect-uri',
  postLogoutRedirectUris: '--post-logout-redirect-uri',
  backchannelLogoutUri: '--backchannel-logout-uri',
  frontchannelLogoutUri: '--frontchannel-logout-uri',
  scopes: '--scope',
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

function clientText(client: ClientView, secret?: string): string {
  const lines = describeRecord({
    client_id: client.clientId,
    name: client.name,
    type: client.public ? 'public (PKCE, no secret)' : `confidential (${client.authMethod})`,
    redirect_uris: client.redirectUris,
    post_logout_redirect_uris: client.postLogoutRedirectUris,
    backchannel_logout_uri: client.backchannelLogoutUri,
    frontchannel_logout_uri: client.frontchannelLogoutUri,
    scopes: client.scopes,
    grant_types: client.grantTypes,
    subject_type: client.subjectType,
    first_party: client.firstParty ? 'yes (no consent page)' : 'no',
    id_token_signed_response_alg: client.idTokenSignedResponseAlg,
    id_token_claims: client.idTokenClaims === 'granted' ? 'granted (the claims of the granted scopes)' : 'minimal (sub only)',
    require_par: client.requirePar ? 'yes' : 'no',
    dpop_bound: client.dpopBound ? 'yes (access tokens only with DPoP)' : 'no',
    require_acr: client.requireAcr ?? 'none (any complete sign-in)',
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
      'idp clients add --name <name> --redirect-uri <uri>... [--post-logout-redirect-uri <uri>]... [--backchannel-logout-uri <uri>] [--frontchannel-logout-uri <uri>] [--scope <scope>]... [--subject-type pairwise|public] [--public] [--auth-method client_secret_basic|client_secret_post] [--grant-type <type>]... [--first-party] [--id-token-signed-response-alg RS256|ES256] [--id-token-claims granted|minimal] [--require-par] [--dpop-bound] [--require-acr urn:group-idp:acr:1fa|urn:group-idp:acr:2fa|phr|none]',
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
      return { json: { ...client, clientSecret: clientSecret ?? null }, text: clientText(client, clientSecret) };
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
      return { json: client, text: clientText(client) };
    },
  },
  {
    name: 'clients update',
    usage:
      'idp clients update <client_id> [--name ..] [--redirect-uri ..].. [--backchannel-logout-uri <uri>|""] [--scope ..].. [--grant-type ..].. [--subject-type ..] [--first-party|--no-first-party] [--id-token-signed-response-alg RS256|ES256] [--id-token-claims granted|minimal] [--require-par|--no-require-par] [--dpop-bound|--no-dpop-bound] [--require-acr <level>|none]',
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
      const client = await withFlagErrors(input, async () => updateClient(runtime.db, clientId!, changes, await runtime.clientValidator()));
      await recordAuditEvent(runtime.db, { event: 'client.updated', outcome: 'success', actor: 'admin', clientId: client.clientId });
      return { json: client, text: clientText(client) };
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
