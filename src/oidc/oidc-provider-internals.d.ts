// The internal modules of oidc-provider imported by src/oidc/internals.ts.
declare module 'oidc-provider/lib/helpers/initialize_keystore.js' {
  export default function initializeKeyStore(this: unknown, jwks: { keys: unknown[] }): void;
}

declare module 'oidc-provider/lib/helpers/weak_cache.js' {
  export default function instance(provider: unknown): unknown;
}
