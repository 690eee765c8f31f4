import * as oidc from 'openid-client';

/** Discovers the issuer as a relying party would, with a secret (confidential) or without (public). */
export async function discoverClient(issuer: string, clientId: string, secret: string | undefined): Promise<oidc.Configuration> {
  return oidc.discovery(
    new URL(issuer),
    clientId,
    secret ? { client_secret: secret } : undefined,
    secret ? oidc.ClientSecretBasic(secret) : oidc.None(),
    { execute: [oidc.allowInsecureRequests] },
  );
}

/** An authorization request with PKCE (S256), state and nonce, plus what the callback must be checked against. */
export async function startAuthorization(config: oidc.Configuration, redirectUri: string, scope: string) {
  const verifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const nonce = oidc.randomNonce();
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope,
    state,
    nonce,
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
  });
  return { url, verifier, state, nonce };
}

/** Redeems the code in `callback` as the relying party does, checking PKCE, state and nonce. */
export function exchangeCode(
  config: oidc.Configuration,
  callback: URL,
  request: { verifier: string; state: string; nonce: string },
): Promise<oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers> {
  return oidc.authorizationCodeGrant(config, callback, {
    pkceCodeVerifier: request.verifier,
    expectedState: request.state,
    expectedNonce: request.nonce,
  });
}
