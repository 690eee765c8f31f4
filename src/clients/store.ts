import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { supportedScopes } from '../accounts/claims.js';
import { acrValuesSupported, isAcrLevel } from '../factors/levels.js';
import type { Database, Queryable } from '../db/index.js';
import { InvalidInput, NotFound } from '../errors.js';
import { parseOrThrow } from '../validation.js';
import { hashClientSecret, newClientSecret } from '../security/client-secrets.js';

const loopbackHosts = new Set(['localhost', '127.0.0.1', '[::1]']);

/** https, or http on loopback only (RFC 9700 §2.1 / RFC 8252 §7.3); never a fragment. */
export const redirectUriSchema = z
  .string()
  .trim()
  .superRefine((value, ctx) => {
    const url = URL.parse(value);
    if (!url) {
      ctx.addIssue({ code: 'custom', message: 'must be an absolute URL' });
    } else if (!(url.protocol === 'https:' || (url.protocol === 'http:' && loopbackHosts.has(url.hostname)))) {
      ctx.addIssue({ code: 'custom', message: 'must use https (http is allowed only for localhost and 127.0.0.1)' });
    } else if (url.hash) {
      ctx.addIssue({ code: 'custom', message: 'must not contain a fragment' });
    }
  });

export const deviceCodeGrant = 'urn:ietf:params:oauth:grant-type:device_code';
export const grantTypes = ['authorization_code', 'refresh_token', 'client_credentials', deviceCodeGrant] as const;
export const authMethods = ['client_secret_basic', 'client_secret_post', 'none'] as const;
/** The algorithms our signing keys exist for (oidc/keys.ts). */
export const idTokenAlgorithms = ['RS256', 'ES256'] as const;
/** granted: the ID token carries the claims of the granted scopes (what most libraries read); minimal: sub and protocol claims only. */
export const idTokenClaimsModes = ['granted', 'minimal'] as const;

export const clientRegistrationSchema = z
  .object({
    name: z.string().trim().min(1, 'a name is required').max(100, 'use at most 100 characters'),
    redirectUris: z.array(redirectUriSchema).default([]),
    postLogoutRedirectUris: z.array(redirectUriSchema).default([]),
    backchannelLogoutUri: redirectUriSchema.optional(),
    frontchannelLogoutUri: redirectUriSchema.optional(),
    scopes: z
      .array(z.enum(supportedScopes, { message: `must be one of ${supportedScopes.join(', ')}` }))
      .default(['openid', 'profile', 'email']),
    /** Scopes the service may ask for but the person may leave out on the consent page. */
    optionalScopes: z
      .array(z.enum(supportedScopes, { message: `must be one of ${supportedScopes.join(', ')}` }))
      .default([])
      .refine((scopes) => !scopes.includes('openid'), 'openid is always needed'),
    subjectType: z.enum(['pairwise', 'public'], { message: 'must be pairwise or public' }).default('pairwise'),
    public: z.boolean().default(false),
    authMethod: z.enum(authMethods, { message: `must be one of ${authMethods.join(', ')}` }).optional(),
    grantTypes: z
      .array(z.enum(grantTypes, { message: `must be one of ${grantTypes.join(', ')}` }))
      .default(['authorization_code', 'refresh_token']),
    firstParty: z.boolean().default(false),
    idTokenSignedResponseAlg: z.enum(idTokenAlgorithms, { message: `must be one of ${idTokenAlgorithms.join(', ')}` }).default('RS256'),
    idTokenClaims: z.enum(idTokenClaimsModes, { message: `must be one of ${idTokenClaimsModes.join(', ')}` }).default('granted'),
    /** Authorization requests only through pushed authorization requests (RFC 9126). */
    requirePar: z.boolean().default(false),
    /** Access tokens only bound to a DPoP key (RFC 9449). */
    dpopBound: z.boolean().default(false),
    /** The authentication level every sign-in at the service must reach (factors/levels.ts). */
    requireAcr: z.enum(acrValuesSupported, { message: `must be one of ${acrValuesSupported.join(', ')} (or none)` }).optional(),
  })
  .superRefine((client, ctx) => {
    const usesCode = client.grantTypes.includes('authorization_code');
    if (usesCode && client.redirectUris.length === 0) {
      ctx.addIssue({ code: 'custom', path: ['redirectUris'], message: 'at least one redirect URI is required for authorization_code' });
    }
    if (client.grantTypes.includes('refresh_token') && !usesCode && !client.grantTypes.includes(deviceCodeGrant)) {
      ctx.addIssue({ code: 'custom', path: ['grantTypes'], message: 'refresh_token needs authorization_code or the device grant' });
    }
    if (client.requirePar && !usesCode) {
      ctx.addIssue({ code: 'custom', path: ['requirePar'], message: 'pushed authorization requests need authorization_code' });
    }
    // Runs even when a URI above failed to parse: URL.parse, not new URL.
    const hosts = new Set(client.redirectUris.map((uri) => URL.parse(uri)?.host));
    if (client.subjectType === 'pairwise' && hosts.size > 1) {
      ctx.addIssue({
        code: 'custom',
        path: ['redirectUris'],
        message: 'a pairwise client needs all redirect URIs on one host (its sector); use one host or --subject-type public',
      });
    }
    if (client.public && client.grantTypes.includes('client_credentials')) {
      ctx.addIssue({ code: 'custom', path: ['grantTypes'], message: 'a public client cannot use client_credentials' });
    }
    if (client.public && client.authMethod && client.authMethod !== 'none') {
      ctx.addIssue({ code: 'custom', path: ['authMethod'], message: 'a public client authenticates with none' });
    }
  });

export type ClientRegistration = z.input<typeof clientRegistrationSchema>;
export const clientUpdateSchema = z.object({
  name: clientRegistrationSchema.shape.name.optional(),
  redirectUris: z.array(redirectUriSchema).optional(),
  postLogoutRedirectUris: z.array(redirectUriSchema).optional(),
  backchannelLogoutUri: redirectUriSchema.nullable().optional(),
  frontchannelLogoutUri: redirectUriSchema.nullable().optional(),
  scopes: clientRegistrationSchema.shape.scopes.unwrap().optional(),
  optionalScopes: z
    .array(z.enum(supportedScopes, { message: `must be one of ${supportedScopes.join(', ')}` }))
    .refine((scopes) => !scopes.includes('openid'), 'openid is always needed')
    .optional(),
  subjectType: z.enum(['pairwise', 'public']).optional(),
  grantTypes: clientRegistrationSchema.shape.grantTypes.unwrap().optional(),
  firstParty: z.boolean().optional(),
  idTokenSignedResponseAlg: clientRegistrationSchema.shape.idTokenSignedResponseAlg.unwrap().optional(),
  idTokenClaims: clientRegistrationSchema.shape.idTokenClaims.unwrap().optional(),
  requirePar: z.boolean().optional(),
  dpopBound: z.boolean().optional(),
  /** null: no level required any more. */
  requireAcr: clientRegistrationSchema.shape.requireAcr.unwrap().nullable().optional(),
});
export type ClientUpdate = z.input<typeof clientUpdateSchema>;

/** OIDC client metadata as stored and as oidc-provider reads it. */
export type ClientMetadata = Record<string, unknown> & { client_id: string; client_secret?: string };

/** Checks metadata the way the server will (oidc-provider's own schema); throws InvalidInput. */
export type MetadataValidator = (metadata: ClientMetadata) => Promise<void>;

export interface ClientView {
  clientId: string;
  name: string;
  public: boolean;
  authMethod: string;
  redirectUris: string[];
  postLogoutRedirectUris: string[];
  backchannelLogoutUri: string | null;
  frontchannelLogoutUri: string | null;
  /** Scopes the service needs. */
  scopes: string[];
  /** Scopes it may ask for, which the person may leave out. */
  optionalScopes: string[];
  grantTypes: string[];
  subjectType: string;
  firstParty: boolean;
  idTokenSignedResponseAlg: string;
  idTokenClaims: string;
  requirePar: boolean;
  dpopBound: boolean;
  requireAcr: string | null;
  createdAt: Date;
  updatedAt: Date;
}

// Never starting with '-' or '_', so an id can follow a CLI flag without being read as one.
const newClientId = () => randomBytes(12).toString('base64url').replace(/^[-_]/, 'c');

type ParsedRegistration = z.output<typeof clientRegistrationSchema>;

function toMetadata(clientId: string, input: ParsedRegistration, secret: string | undefined): ClientMetadata {
  const usesCode = input.grantTypes.includes('authorization_code');
  return {
    client_id: clientId,
    ...(secret ? { client_secret: secret } : {}),
    client_name: input.name,
    application_type: 'web',
    grant_types: input.grantTypes,
    response_types: usesCode ? ['code'] : [],
    redirect_uris: input.redirectUris,
    post_logout_redirect_uris: input.postLogoutRedirectUris,
    ...(input.backchannelLogoutUri
      ? { backchannel_logout_uri: input.backchannelLogoutUri, backchannel_logout_session_required: true }
      : {}),
    ...(input.frontchannelLogoutUri
      ? { frontchannel_logout_uri: input.frontchannelLogoutUri, frontchannel_logout_session_required: true }
      : {}),
    scope: [...new Set([...input.scopes, ...input.optionalScopes])].join(' '),
    ...(input.optionalScopes.length ? { optional_scopes: input.optionalScopes } : {}),
    token_endpoint_auth_method: input.public ? 'none' : (input.authMethod ?? 'client_secret_basic'),
    // Without a redirect URI there is no sector to pair identifiers with, and no user either.
    subject_type: usesCode ? input.subjectType : 'public',
    first_party: input.firstParty,
    id_token_signed_response_alg: input.idTokenSignedResponseAlg,
    id_token_claims: input.idTokenClaims,
    ...(input.requirePar ? { require_pushed_authorization_requests: true } : {}),
    ...(input.dpopBound ? { dpop_bound_access_tokens: true } : {}),
    ...(input.requireAcr ? { require_acr: input.requireAcr } : {}),
  };
}

const optionalOf = (metadata: ClientMetadata): string[] =>
  Array.isArray(metadata['optional_scopes']) ? (metadata['optional_scopes'] as string[]) : [];

function registrationFromMetadata(metadata: ClientMetadata): ParsedRegistration {
  return {
    name: String(metadata['client_name'] ?? metadata.client_id),
    redirectUris: (metadata['redirect_uris'] as string[] | undefined) ?? [],
    postLogoutRedirectUris: (metadata['post_logout_redirect_uris'] as string[] | undefined) ?? [],
    backchannelLogoutUri: metadata['backchannel_logout_uri'] as string | undefined,
    frontchannelLogoutUri: metadata['frontchannel_logout_uri'] as string | undefined,
    scopes: String(metadata['scope'] ?? '')
      .split(' ')
      .filter((scope) => scope && !optionalOf(metadata).includes(scope)) as ParsedRegistration['scopes'],
    optionalScopes: optionalOf(metadata) as ParsedRegistration['optionalScopes'],
    // Services without a redirect URI are stored as public only for lack of a sector; if one
    // gains the code flow later, it starts from the pairwise default like any new service.
    subjectType:
      ((metadata['response_types'] as string[] | undefined)?.length
        ? (metadata['subject_type'] as 'pairwise' | 'public' | undefined)
        : undefined) ?? 'pairwise',
    public: metadata['token_endpoint_auth_method'] === 'none',
    authMethod: metadata['token_endpoint_auth_method'] as ParsedRegistration['authMethod'],
    grantTypes: (metadata['grant_types'] as ParsedRegistration['grantTypes'] | undefined) ?? ['authorization_code'],
    firstParty: metadata['first_party'] === true,
    idTokenSignedResponseAlg:
      (metadata['id_token_signed_response_alg'] as ParsedRegistration['idTokenSignedResponseAlg'] | undefined) ?? 'RS256',
    idTokenClaims: (metadata['id_token_claims'] as ParsedRegistration['idTokenClaims'] | undefined) ?? 'granted',
    requirePar: metadata['require_pushed_authorization_requests'] === true,
    dpopBound: metadata['dpop_bound_access_tokens'] === true,
    requireAcr: isAcrLevel(metadata['require_acr']) ? metadata['require_acr'] : undefined,
  };
}

interface ClientRow {
  id: string;
  metadata: ClientMetadata;
  created_at: Date;
  updated_at: Date;
  [key: string]: unknown;
}

function toView(row: ClientRow): ClientView {
  const m = row.metadata;
  const registration = registrationFromMetadata(m);
  return {
    clientId: row.id,
    name: registration.name,
    public: registration.public,
    authMethod: String(m['token_endpoint_auth_method'] ?? 'client_secret_basic'),
    redirectUris: registration.redirectUris,
    postLogoutRedirectUris: registration.postLogoutRedirectUris,
    backchannelLogoutUri: registration.backchannelLogoutUri ?? null,
    frontchannelLogoutUri: registration.frontchannelLogoutUri ?? null,
    scopes: registration.scopes,
    optionalScopes: registration.optionalScopes,
    grantTypes: registration.grantTypes,
    subjectType: String(m['subject_type'] ?? 'pairwise'),
    firstParty: registration.firstParty,
    idTokenSignedResponseAlg: registration.idTokenSignedResponseAlg,
    idTokenClaims: registration.idTokenClaims,
    requirePar: registration.requirePar,
    dpopBound: registration.dpopBound,
    requireAcr: registration.requireAcr ?? null,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

async function findClientRow(db: Queryable, clientId: string): Promise<ClientRow> {
  const { rows } = await db.query<ClientRow>('SELECT id, metadata, created_at, updated_at FROM clients WHERE id = $1', [clientId]);
  if (!rows[0]) throw new NotFound(`no client with id ${clientId}`);
  return rows[0];
}

export interface RegisteredClient {
  client: ClientView;
  /** Shown once; only its holder can present it again. */
  clientSecret: string | undefined;
}

export async function registerClient(db: Queryable, input: ClientRegistration, validate: MetadataValidator): Promise<RegisteredClient> {
  const registration = parseOrThrow(clientRegistrationSchema, input);
  const secret = registration.public ? undefined : newClientSecret();
  const metadata = toMetadata(newClientId(), registration, secret && hashClientSecret(secret));
  await validate(metadata);
  const { rows } = await db.query<ClientRow>(
    'INSERT INTO clients (id, metadata) VALUES ($1, $2) RETURNING id, metadata, created_at, updated_at',
    [metadata.client_id, metadata],
  );
  return { client: toView(rows[0]!), clientSecret: secret };
}

export async function listClients(db: Queryable): Promise<ClientView[]> {
  const { rows } = await db.query<ClientRow>('SELECT id, metadata, created_at, updated_at FROM clients ORDER BY created_at, id');
  return rows.map(toView);
}

export async function getClient(db: Queryable, clientId: string): Promise<ClientView> {
  return toView(await findClientRow(db, clientId));
}

export async function updateClient(
  db: Database,
  clientId: string,
  changes: ClientUpdate,
  validate: MetadataValidator,
): Promise<ClientView> {
  const patch = parseOrThrow(clientUpdateSchema, changes);
  if (Object.values(patch).every((value) => value === undefined)) throw new InvalidInput('nothing to update');
  return db.transaction(async (tx) => {
    const row = await findClientRow(tx, clientId);
    const current = registrationFromMetadata(row.metadata);
    const merged = parseOrThrow(clientRegistrationSchema, {
      ...current,
      ...Object.fromEntries(Object.entries(patch).filter(([, value]) => value !== undefined)),
      backchannelLogoutUri: patch.backchannelLogoutUri === null ? undefined : (patch.backchannelLogoutUri ?? current.backchannelLogoutUri),
      frontchannelLogoutUri:
        patch.frontchannelLogoutUri === null ? undefined : (patch.frontchannelLogoutUri ?? current.frontchannelLogoutUri),
      requireAcr: patch.requireAcr === null ? undefined : (patch.requireAcr ?? current.requireAcr),
    });
    const metadata = toMetadata(clientId, merged, row.metadata.client_secret);
    await validate(metadata);
    const { rows } = await tx.query<ClientRow>(
      'UPDATE clients SET metadata = $2, updated_at = now() WHERE id = $1 RETURNING id, metadata, created_at, updated_at',
      [clientId, metadata],
    );
    return toView(rows[0]!);
  });
}

export async function rotateClientSecret(db: Database, clientId: string): Promise<RegisteredClient> {
  return db.transaction(async (tx) => {
    const row = await findClientRow(tx, clientId);
    if (row.metadata['token_endpoint_auth_method'] === 'none') throw new InvalidInput('a public client has no secret');
    const secret = newClientSecret();
    const { rows } = await tx.query<ClientRow>(
      `UPDATE clients SET metadata = jsonb_set(metadata, '{client_secret}', to_jsonb($2::text)), updated_at = now()
       WHERE id = $1 RETURNING id, metadata, created_at, updated_at`,
      [clientId, hashClientSecret(secret)],
    );
    return { client: toView(rows[0]!), clientSecret: secret };
  });
}

/** Deletes the client row inside the caller's transaction (remove-client also revokes what was issued to it). */
export async function deleteClientRow(tx: Queryable, clientId: string): Promise<void> {
  const { rowCount } = await tx.query('DELETE FROM clients WHERE id = $1', [clientId]);
  if (!rowCount) throw new NotFound(`no client with id ${clientId}`);
}
