import { errors, type Configuration } from 'oidc-provider';
import { acrValuesSupported, isAcrLevel } from '../factors/levels.js';

const loopbackRedirectHosts = new Set(['127.0.0.1', '[::1]']);

/**
 * What a service registering itself may use as a redirect or logout URI: https, or for a
 * native app a loopback IP literal over http (RFC 8252 §7.3; `localhost` is not recommended
 * there, §8.3) or a private-use scheme in reverse-domain form (§7.1). Administrators
 * registering services through the CLI may also use http://localhost for development.
 */
function acceptableForRegistration(uri: unknown, native: boolean): boolean {
  if (typeof uri !== 'string') return false;
  const url = URL.parse(uri);
  if (!url) return false;
  if (url.protocol === 'https:') return true;
  if (!native) return false;
  if (url.protocol === 'http:') return loopbackRedirectHosts.has(url.hostname);
  return /^[a-z][a-z0-9+-]*\.[a-z0-9.+-]+:$/.test(url.protocol);
}

/** Dynamic registration's rules on top of oidc-provider's: https only (loopback for native apps) and pairwise subjects. */
function enforceRegistrationRules(metadata: Record<string, unknown>): void {
  const native = metadata['application_type'] === 'native';
  for (const uri of (metadata['redirect_uris'] as unknown[] | undefined) ?? []) {
    if (!acceptableForRegistration(uri, native)) {
      throw new errors.InvalidRedirectUri(
        'redirect_uris must use https (native apps: http on 127.0.0.1 or [::1], or a private-use scheme)',
      );
    }
  }
  for (const uri of (metadata['post_logout_redirect_uris'] as unknown[] | undefined) ?? []) {
    if (!acceptableForRegistration(uri, native)) throw new errors.InvalidClientMetadata('post_logout_redirect_uris must use https');
  }
  for (const key of ['backchannel_logout_uri', 'frontchannel_logout_uri', 'initiate_login_uri']) {
    if (metadata[key] !== undefined && !acceptableForRegistration(metadata[key], false)) {
      throw new errors.InvalidClientMetadata(`${key} must use https`);
    }
  }
  // A service registering itself never gets the account id as sub: it could correlate people with other services.
  metadata['subject_type'] = 'pairwise';
}

const idTokenClaimsModes = new Set(['granted', 'minimal']);

/**
 * Client metadata beyond oidc-provider's own, and the checks on it. `ctx` is set only when a
 * service registers itself (/reg); the CLI's clients are an administrator's.
 * - first_party: the group's own services skip consent; only an administrator can set it.
 * - frontchannel_logout_uri / _session_required: Front-Channel Logout 1.0, which oidc-provider
 *   9 no longer implements (http/frontchannel-logout.ts renders it).
 * - id_token_claims: `granted` (default) puts the claims of the granted scopes in the ID
 *   token, `minimal` only sub and protocol claims (the rest at userinfo).
 * - optional_scopes: scopes of `scope` the person may leave out on the consent page
 *   (unticked unless shared before); the rest are needed.
 * - require_acr: the authentication level every sign-in at the service must reach, whatever
 *   it asks (factors/levels.ts).
 */
export const extraClientMetadata: NonNullable<Configuration['extraClientMetadata']> = {
  properties: [
    'first_party',
    'frontchannel_logout_uri',
    'frontchannel_logout_session_required',
    'id_token_claims',
    'require_acr',
    'optional_scopes',
  ],
  validator(ctx, key, value, metadata) {
    switch (key) {
      case 'frontchannel_logout_uri':
        if (value !== undefined && (typeof value !== 'string' || !/^https?:\/\//.test(value) || !URL.canParse(value))) {
          throw new errors.InvalidClientMetadata('frontchannel_logout_uri must be an http(s) URL');
        }
        break;
      case 'frontchannel_logout_session_required':
        if (value !== undefined && typeof value !== 'boolean') {
          throw new errors.InvalidClientMetadata('frontchannel_logout_session_required must be a boolean');
        }
        break;
      case 'id_token_claims':
        if (value === undefined) metadata['id_token_claims'] = 'granted';
        else if (typeof value !== 'string' || !idTokenClaimsModes.has(value)) {
          throw new errors.InvalidClientMetadata('id_token_claims must be granted or minimal');
        }
        break;
      case 'optional_scopes': {
        if (value === undefined) break;
        const allowed = new Set(String(metadata['scope'] ?? '').split(' '));
        if (!Array.isArray(value) || !value.every((scope) => typeof scope === 'string' && scope !== 'openid' && allowed.has(scope))) {
          throw new errors.InvalidClientMetadata('optional_scopes must be scopes of the client other than openid');
        }
        break;
      }
      case 'require_acr':
        if (value !== undefined && !isAcrLevel(value)) {
          throw new errors.InvalidClientMetadata(`require_acr must be one of ${acrValuesSupported.join(', ')}`);
        }
        break;
      case 'first_party':
        if (ctx) enforceRegistrationRules(metadata);
        if (value === undefined) metadata['first_party'] = false;
        else if (typeof value !== 'boolean') throw new errors.InvalidClientMetadata('first_party must be a boolean');
        // A service must not make itself first-party (and so skip consent); only an admin can.
        else if (value && ctx) throw new errors.InvalidClientMetadata('first_party can only be set by an administrator');
        break;
    }
  },
};
