import { errors, type KoaContextWithOIDC } from 'oidc-provider';
import type { Database } from '../db/index.js';
import { returnInitialAccessTokenUse, spendInitialAccessTokenUse } from './artefacts.js';

/** The registration policy every initial access token carries (`idp clients initial-token`). */
export const registrationPolicy = 'registration-rules';

const supportedResponseTypes = new Set(['code', 'none']);

/**
 * RFC 7591 §2: the server may register what it supports of what was asked and say so in its
 * answer. Unsupported grant and response types are dropped; the registration is refused
 * only when nothing usable is left.
 */
function registerSupportedSubset(properties: Record<string, unknown>, grantTypes: Set<string>): void {
  const keep = (key: 'grant_types' | 'response_types', supported: Set<string>, what: string) => {
    const asked = properties[key];
    if (!Array.isArray(asked)) return;
    const usable = asked.filter((value): value is string => typeof value === 'string' && supported.has(value));
    if (asked.length && !usable.length) throw new errors.InvalidClientMetadata(`none of the requested ${what} is supported`);
    properties[key] = usable;
  };
  keep('grant_types', grantTypes, 'grant types');
  keep('response_types', supportedResponseTypes, 'response types');
  // Without a grant that redirects, response types would be refused as inconsistent.
  const grants = (properties['grant_types'] as string[] | undefined) ?? ['authorization_code'];
  if (!grants.includes('authorization_code') && Array.isArray(properties['response_types'])) properties['response_types'] = [];
}

/**
 * What a registration through /reg goes through before oidc-provider validates it: it spends
 * one use of its initial access token (single-use unless made with --uses N; a refused
 * registration gives it back, see returnSpentUse), and keeps only what is supported.
 */
export function registrationPolicies(db: Database, grantTypes: () => Set<string>) {
  return {
    async [registrationPolicy](ctx: KoaContextWithOIDC, properties: Record<string, unknown>) {
      const token = ctx.oidc.entities.InitialAccessToken?.jti;
      if (!token || !(await spendInitialAccessTokenUse(db, token))) throw new errors.InvalidToken('initial access token already used');
      ctx.state['spentInitialAccessToken'] = token;
      registerSupportedSubset(properties, grantTypes());
    },
  };
}

/** For oidc-provider's registration_create.error event: a registration refused for its metadata does not spend its token. */
export function returnSpentUse(db: Database, onError: (error: Error) => void) {
  return (ctx: KoaContextWithOIDC) => {
    const token = ctx.state['spentInitialAccessToken'] as string | undefined;
    if (token) returnInitialAccessTokenUse(db, token).catch(onError);
  };
}
