// The one internal module of oidc-provider imported (src/oidc/internals.ts).
declare module 'oidc-provider/lib/helpers/initialize_keystore.js' {
  export default function initializeKeyStore(this: unknown, jwks: { keys: unknown[] }): void;
}
